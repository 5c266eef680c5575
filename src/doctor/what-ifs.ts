// Changes an operator is likely to make next on a host that is ready today:
// updating the SEV firmware its log calls too old, fixing the SNP
// configuration the firmware refused, starting SNP guests. Each is run like
// any other change; one that breaks kdump is reported with its own fixes.

import type { ScenarioInput } from '../scenario/schema.js';
import type { HostModel } from './host-scenario.js';

export interface WhatIf {
  id: string;
  /** "the SEV firmware is updated to 1.55" */
  title: string;
  apply: (s: ScenarioInput) => void;
}

export function likelyChanges(m: HostModel): WhatIf[] {
  const out: WhatIf[] = [];
  const snp = m.scenario.machine?.cpu?.snp;
  if (snp === undefined) return out;
  const fw = snp.firmware === undefined ? undefined : Number(snp.firmware);
  if (fw !== undefined && fw < 1.51) {
    out.push({ id: 'firmware-update', title: 'the SEV firmware is updated to 1.55 (SNP then initialises)', apply: (s) => { s.machine!.cpu!.snp!.firmware = '1.55'; } });
  }
  const initFault = (m.scenario.faults ?? []).some((f) => f.kind === 'psp-command-fails' && f.command === 'SNP_INIT_EX' && f.phase === 'boot');
  if (initFault) {
    out.push({ id: 'snp-init-fixed', title: 'SNP_INIT succeeds (the configuration the firmware refused is fixed)', apply: (s) => { s.faults = (s.faults ?? []).filter((f) => !(f.kind === 'psp-command-fails' && f.phase === 'boot')); } });
  }
  if (snp.guests === 0) {
    out.push({ id: 'snp-guests-start', title: 'SNP guests run when it crashes', apply: (s) => { s.machine!.cpu!.snp!.guests = 2; } });
  }
  return out;
}
