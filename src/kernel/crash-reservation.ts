// reserve_crashkernel(): turn the crashkernel= request into a memblock
// reservation and say so in the log, worded per era (the x86 code before
// 6.7, the generic crash_reserve.c code after).

import { parseCrashkernel, CRASH_ALIGN, CRASH_ADDR_LOW_MAX, CRASH_ADDR_HIGH_MAX, DEFAULT_CRASH_KERNEL_LOW_SIZE, MiB } from './crashkernel.js';
import type { Range } from './memblock.js';
import type { FirstKernel } from './first-kernel.js';
import { hexPad } from '../util/hex.js';

export interface CrashReservation {
  region?: Range;
  lowRegion?: Range;
}

export function reserveCrashRegion(k: FirstKernel): CrashReservation {
  const mb = k.memblock;
  const req = parseCrashkernel(k.cmdline.raw, mb.total);
  if (req === undefined) return {};
  if (!req.ok) {
    k.log.printk(req.message);
    k.step(`crashkernel= not honoured: ${req.message}`);
    return {};
  }
  const generic = k.profile.mechanisms.genericCrashkernelReservation;
  let base: number | undefined;
  if (req.base !== undefined) {
    if (mb.reserve(req.base, req.size)) base = req.base;
    else {
      k.log.printk('crashkernel reservation failed - memory is in use.');
      k.step(`crashkernel=${req.size >> 20}M@0x${req.base.toString(16)} not reserved: memory in use`);
      return {};
    }
  } else if (req.high) {
    base = mb.alloc(req.size, CRASH_ALIGN, CRASH_ADDR_LOW_MAX, CRASH_ADDR_HIGH_MAX) ?? mb.alloc(req.size, CRASH_ALIGN, CRASH_ALIGN, CRASH_ADDR_LOW_MAX);
  } else {
    base = mb.alloc(req.size, CRASH_ALIGN, CRASH_ALIGN, CRASH_ADDR_LOW_MAX);
    if (base === undefined) base = mb.alloc(req.size, CRASH_ALIGN, CRASH_ADDR_LOW_MAX, CRASH_ADDR_HIGH_MAX);
  }
  if (base === undefined) {
    k.log.printk(generic ? `cannot allocate crashkernel (size:0x${req.size.toString(16)})` : 'crashkernel reservation failed - No suitable area found.');
    k.step(`crashkernel: no ${req.size >> 20} MiB area found`);
    return {};
  }
  const out: CrashReservation = { region: { start: base, end: base + req.size } };
  // A reservation above 4 GiB also needs low memory for DMA buffers in the crash kernel.
  if (base >= CRASH_ADDR_LOW_MAX && req.lowSize !== 0) {
    const lowSize = req.lowSize ?? DEFAULT_CRASH_KERNEL_LOW_SIZE;
    const low = mb.alloc(lowSize, CRASH_ALIGN, CRASH_ALIGN, CRASH_ADDR_LOW_MAX);
    if (low === undefined) k.log.printk(`cannot allocate crashkernel low memory (size:0x${lowSize.toString(16)}).`);
    else out.lowRegion = { start: low, end: low + lowSize };
  }
  if (generic) {
    if (out.lowRegion) {
      k.log.printk(`crashkernel low memory reserved: 0x${hexPad(out.lowRegion.start, 8)} - 0x${hexPad(out.lowRegion.end, 8)} (${(out.lowRegion.end - out.lowRegion.start) / MiB} MB)`);
    }
    k.log.printk(`crashkernel reserved: 0x${hexPad(base, 16)} - 0x${hexPad(base + req.size, 16)} (${req.size / MiB} MB)`);
  } else {
    if (out.lowRegion) {
      k.log.printk(`Reserving ${(out.lowRegion.end - out.lowRegion.start) / MiB}MB of low memory at ${out.lowRegion.start / MiB}MB for crashkernel (low RAM limit: 4096MB)`);
    }
    k.log.printk(`Reserving ${Math.floor(req.size / MiB)}MB of memory at ${Math.floor(base / MiB)}MB for crashkernel (System RAM: ${Math.floor(mb.total / MiB)}MB)`);
  }
  k.step(`crash region reserved at 0x${base.toString(16)}-0x${(base + req.size).toString(16)} (${req.size / MiB} MiB)`, { start: base, end: base + req.size });
  return out;
}
