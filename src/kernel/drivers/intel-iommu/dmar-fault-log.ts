// How dmar_fault() words what it finds in the fault recording registers,
// per era (ref §2.6), and the printk rate limit it prints under. The
// hardware only stores the record; every word of the line is the kernel's.

import type { DecodedFaultRecord } from '../../../platform/vtd/fault-recording.js';
import { faultReasonText, isInterruptFault } from '../../../platform/vtd/fault-reasons.js';
import type { KernelMechanisms } from '../../profile.js';

export type DmarFaultFormat = KernelMechanisms['dmarFaultFormat'];

const h2 = (n: number): string => n.toString(16).padStart(2, '0');
const dec2 = (n: number): string => String(n).padStart(2, '0');

function device(sid: number): string {
  return `${h2((sid >> 8) & 0xff)}:${h2((sid >> 3) & 0x1f)}.${sid & 7}`;
}

/** The prefix of every intel-iommu line of the era ("dmar: " before the 4.2 rename). */
export function dmarPrefix(fmt: DmarFaultFormat): string {
  return fmt === 'v4.0' ? 'dmar: ' : 'DMAR: ';
}

/** "DRHD: handling fault status reg %x", as the era prints it. */
export function faultStatusLine(fmt: DmarFaultFormat, fsts: number): string {
  return `${dmarPrefix(fmt)}DRHD: handling fault status reg ${fsts.toString(16)}`;
}

/** The lines one fault record becomes. */
export function faultRecordLines(fmt: DmarFaultFormat, r: DecodedFaultRecord): string[] {
  const text = faultReasonText(r.reason);
  const dir = r.read ? 'DMA Read' : 'DMA Write';
  if (fmt === 'v4.0') {
    // Reasons are printed in decimal: "fault reason 34" is 0x22.
    if (isInterruptFault(r.reason)) return [`INTR-REMAP:[fault reason ${dec2(r.reason)}] ${text}`];
    return [
      `dmar: DMAR:[${dir}] Request device [${device(r.sourceId)}] fault addr ${r.address.toString(16)}`,
      `DMAR:[fault reason ${dec2(r.reason)}] ${text}`,
    ];
  }
  if (isInterruptFault(r.reason)) {
    return [`DMAR: [INTR-REMAP] Request device [${device(r.sourceId)}] fault index 0x${r.index.toString(16)} [fault reason 0x${h2(r.reason)}] ${text}`];
  }
  if (fmt === 'v4.4') {
    return [`DMAR: [${dir}] Request device [${device(r.sourceId)}] fault addr ${r.address.toString(16)} [fault reason ${dec2(r.reason)}] ${text}`];
  }
  const pasid = r.pasid === undefined ? 'NO_PASID' : `PASID 0x${r.pasid.toString(16)}`;
  return [`DMAR: [${dir} ${pasid}] Request device [${device(r.sourceId)}] fault addr 0x${r.address.toString(16)} [fault reason 0x${h2(r.reason)}] ${text}`];
}

/** printk's default rate limit: a burst of 10 per 5 s interval, the rest dropped. */
export class RateLimit {
  readonly #intervalNs: number;
  readonly #burst: number;
  #begin = -Infinity;
  #printed = 0;
  suppressed = 0;

  constructor(intervalNs = 5e9, burst = 10) {
    this.#intervalNs = intervalNs;
    this.#burst = burst;
  }

  /** __ratelimit(): true when this message may print at virtual time `now`. */
  allow(now: number): boolean {
    if (now - this.#begin >= this.#intervalNs) {
      this.#begin = now;
      this.#printed = 0;
    }
    if (this.#printed < this.#burst) {
      this.#printed++;
      return true;
    }
    this.suppressed++;
    return false;
  }
}
