// Why a capture kernel's IOMMU did not do what it asked, told from the
// hardware trace alone: base-register writes the IOMMU ignored, the ring it
// fetched from and the semaphore it stored to instead of the ones the kernel
// used, and where the timer's interrupts went. These lines join a run's
// causal chain; the kernel models never see them.

import type { Machine } from '../platform/machine.js';
import type { TraceEvent } from '../platform/trace.js';
import { formatTimestamp } from '../kernel/dmesg.js';

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Lines explaining the IOMMU's behaviour from the capture kernel's start on (empty when there is nothing to explain). */
export function explainCaptureIommu(m: Machine, captureCpu: number): string[] {
  // Only an IOMMU can have held on to what a capture kernel programmed.
  if (m.amdIommu === undefined) return [];
  const ev = m.trace.events;
  const start = ev.findIndex((e) => e.source === 'crash-kernel' && e.kind === 'step' && e.detail.startsWith('capture kernel'));
  if (start < 0) return [];
  const after = ev.slice(start);
  const out: string[] = [];
  const at = (e: TraceEvent): string => formatTimestamp(e.t).trim();
  const ignored = after.filter((e) => e.kind === 'iommu-reg-write-ignored');
  if (ignored.length > 0) {
    const regs = [...new Set(ignored.map((e) => String(e.data?.['reg'])))];
    out.push(`${at(ignored[0]!)} ${ignored[0]!.source}: ${ignored.length} writes to base registers ignored under SNP enforcement (${regs.join(', ')}): the IOMMU keeps the old kernel's tables`);
  }
  const wanted = (reg: string): number | undefined => {
    const w = ignored.find((e) => e.data?.['reg'] === reg && e.data?.['value'] !== undefined); // the low half: the whole new address below 4 GiB
    return w === undefined ? undefined : Number(BigInt(String(w.data!['value'])) & 0x000f_ffff_ffff_f000n);
  };
  const cmds = after.filter((e) => e.kind === 'iommu-cmd');
  const newRing = wanted('CmdBufBase');
  if (cmds.length > 0 && newRing !== undefined) {
    const rings = [...new Set(cmds.map((e) => Number(e.data?.['ringBase'])))];
    if (!rings.includes(newRing)) {
      out.push(`${at(cmds[0]!)} ${cmds[0]!.source}: ${cmds.length} commands fetched from the old ring at ${rings.map(hex).join(', ')}, none from the capture kernel's ring at ${hex(newRing)}: stale commands replayed`);
    }
  }
  const newSem = wanted('CompletionStoreBase');
  const stores = after.filter((e) => e.kind === 'iommu-completion-store');
  if (newSem !== undefined) {
    const where = [...new Set(stores.map((e) => Number(e.data?.['pa'])))];
    if (!where.includes(newSem)) {
      out.push(`${at(stores[0] ?? ignored[0]!)} ${ignored[0]!.source}: ${stores.length} completion stores went to ${where.length > 0 ? where.map(hex).join(', ') : 'nowhere'}, none to the semaphore the capture kernel polls at ${hex(newSem)}`);
    }
  }
  const delivered = after.filter((e) => e.kind === 'irq-delivered' && Number(e.data?.['cpu']) !== captureCpu);
  const dropped = after.filter((e) => e.kind === 'irq-not-delivered' || e.kind === 'iommu-intr-dropped');
  if (delivered.length > 0) {
    const cpus = [...new Set(delivered.map((e) => Number(e.data?.['cpu'])))];
    const states = cpus.map((c) => `CPU ${c} (${m.cpus[c]?.state ?? 'absent'})`);
    out.push(`${at(delivered[0]!)} ${delivered[0]!.source}: ${delivered.length} timer interrupts remapped through the old kernel's IRQ table to ${states.join(', ')}, none to CPU ${captureCpu} where the capture kernel waits`);
  } else if (dropped.length > 0) {
    out.push(`${at(dropped[0]!)} ${dropped[0]!.source}: ${dropped.length} interrupts found no valid remapping entry: ${dropped[0]!.detail}`);
  }
  return out;
}
