// kexec_file_load() for a crash kernel: the first kernel builds the
// elfcorehdr, the crash kernel's boot_params (its e820 map: the crash region
// as RAM, the elfcorehdr reserved) and command line, places every segment in
// the crash region, hashes them and hands the digest to purgatory.

import { Prng } from '../util/prng.js';
import type { E820Entry } from '../platform/e820.js';
import type { FirstKernel } from './first-kernel.js';
import type { KernelProfile } from './profile.js';
import type { Range } from './memblock.js';
import { alignUp } from './layout.js';
import { buildElfcorehdr } from './elfcorehdr.js';
import { CRASH_NOTE_BYTES } from './crash-notes.js';
import { VMCOREINFO_NOTE_SIZE } from './vmcoreinfo-export.js';
import { encodeBootParams, BOOT_PARAMS_SIZE } from './boot-params.js';
import { buildPurgatory, sha256Buffers, runPurgatory, PURGATORY } from './purgatory.js';
import { hashString, tileRandom } from './kernel-image.js';
import { cachedBytes } from './image-cache.js';
import { CrashKernel, type CaptureEnvironment } from './crash-kernel.js';

export interface CaptureKernelSpec {
  profile: KernelProfile;
  /** The command line kdump tooling gives the capture kernel (elfcorehdr= is prepended by the kernel). */
  cmdline: string;
  kernelBytes: number;
  initrdBytes: number;
  env: CaptureEnvironment;
}

export interface KexecSegment {
  name: 'elfcorehdr' | 'purgatory' | 'boot_params' | 'kernel' | 'initrd';
  pa: number;
  size: number;
}

export interface KexecImage {
  capture: CaptureKernelSpec;
  segments: KexecSegment[];
  purgatoryPa: number;
  entryPa: number;
  bootParamsPa: number;
  elfcorehdr: Range;
  /** Old-memory ranges the elfcorehdr describes (System RAM minus exclusions). */
  dumpRanges: Range[];
  cmdline: string;
  digest: string;
}

export type KexecLoadResult = { ok: true; image: KexecImage } | { ok: false; reason: string; messages: string[] };

/** Offset of startup_64 in a bzImage's protected-mode part, where purgatory jumps. */
const KERNEL_ENTRY_OFFSET = 0x200;

export function kexecFileLoad(k: FirstKernel, spec: CaptureKernelSpec): KexecLoadResult {
  const m = k.machine;
  const region = k.crashRegion;
  if (region === undefined) {
    // kexec-tools' messages when /sys/kernel/kexec_crash_size is 0.
    return {
      ok: false,
      reason: 'no crash region is reserved',
      messages: [
        'Memory for crashkernel is not reserved',
        'Please reserve memory by passing"crashkernel=Y@X" parameter to kernel',
        'Then try to loading kdump kernel',
      ],
    };
  }

  const ram = m.e820.filter((e) => e.type === 'usable').map((e) => ({ start: alignUp(e.addr, 4096), end: Math.floor((e.addr + e.size) / 4096) * 4096 }));
  const exclude: Range[] = [{ start: 0, end: 0x100000 }, region];
  if (k.crashLowRegion) exclude.push(k.crashLowRegion);
  const hdr = buildElfcorehdr({
    crashNotes: k.crashNotes,
    crashNoteBytes: CRASH_NOTE_BYTES,
    vmcoreinfoNotePa: k.image.pa('vmcoreinfo_note'),
    vmcoreinfoNoteSize: VMCOREINFO_NOTE_SIZE,
    kernelText: { pa: k.image.base, va: k.image.va('_text'), size: k.image.size },
    ram,
    exclude,
  });

  // Place segments bottom-up in the crash region.
  let next = region.start;
  const place = (name: KexecSegment['name'], size: number, align = 4096): KexecSegment => {
    const pa = alignUp(next, align);
    next = pa + alignUp(size, 4096);
    return { name, pa, size: alignUp(size, 4096) };
  };
  const sElf = place('elfcorehdr', hdr.bytes.length);
  const sPurg = place('purgatory', PURGATORY.size);
  const cmdline = `elfcorehdr=0x${sElf.pa.toString(16)} ${spec.cmdline}`.trim();
  const cmdBytes = new TextEncoder().encode(cmdline + '\0');
  const sBoot = place('boot_params', BOOT_PARAMS_SIZE + cmdBytes.length);
  const sKernel = place('kernel', spec.kernelBytes, 2 ** 21);
  const sInitrd = place('initrd', spec.initrdBytes);
  if (next > region.end) {
    const need = next - region.start;
    return {
      ok: false,
      reason: `segments need ${need} bytes but the crash region has ${region.end - region.start}`,
      messages: [`kexec_file_load failed: Cannot assign requested address`],
    };
  }

  // The capture kernel's memory map: its region as RAM, the elfcorehdr
  // reserved, the first 640 KiB, and the firmware's non-RAM entries as they were.
  const e820: E820Entry[] = [];
  for (const e of m.e820) {
    if (e.type !== 'usable') e820.push(e);
    else if (e.addr === 0) e820.push(e);
  }
  const crashRam: Range[] = [{ start: region.start, end: sElf.pa }, { start: sElf.pa + sElf.size, end: region.end }];
  if (k.crashLowRegion) crashRam.push(k.crashLowRegion);
  for (const r of crashRam) if (r.end > r.start) e820.push({ addr: r.start, size: r.end - r.start, type: 'usable' });
  e820.push({ addr: sElf.pa, size: sElf.size, type: 'reserved' });
  e820.sort((a, b) => a.addr - b.addr);
  const cmdPa = sBoot.pa + BOOT_PARAMS_SIZE;
  const boot = new Uint8Array(sBoot.size);
  boot.set(encodeBootParams(e820, cmdPa, cmdBytes.length), 0);
  boot.set(cmdBytes, BOOT_PARAMS_SIZE);

  const kernel = cachedBytes(`bzImage:${k.config.seed}:${spec.profile.release}:${sKernel.size}`, () => {
    const b = new Uint8Array(sKernel.size);
    tileRandom(b, new Prng(k.config.seed, hashString(spec.profile.release) ^ 0x6b65726e));
    return b;
  });
  // The initramfs: a cpio of mostly text and zero padding.
  const initrd = cachedBytes(`initrd:${sInitrd.size}`, () => {
    const b = new Uint8Array(sInitrd.size);
    const page = new Uint8Array(4096);
    for (let i = 0; i < 3000; i++) page[i] = 0x20 + ((i * 31) % 90);
    for (let at = 0; at < b.length; at += 4096) b.set(page.subarray(0, Math.min(4096, b.length - at)), at);
    return b;
  });

  // Under SME, 4.20+ kernels allocate crash segments decrypted (the new kernel starts without
  // encryption); older ones copy them through the encrypted direct map, so they land as ciphertext.
  if (k.sme.active && k.profile.mechanisms.kexecDecryptsCrashSegments) k.markDecrypted(region);
  const mem = k.mem;
  mem.write(sElf.pa, hdr.bytes);
  mem.write(sBoot.pa, boot);
  mem.write(sKernel.pa, kernel);
  mem.write(sInitrd.pa, initrd);
  const hashed = [sElf, sBoot, sKernel, sInitrd].map((s) => ({ start: s.pa, len: s.size }));
  // kexec_calculate_store_digests() hashes the segment buffers as loaded.
  const digest = sha256Buffers([hdr.bytes, boot, kernel, initrd], hashed);
  const entryPa = sKernel.pa + KERNEL_ENTRY_OFFSET;
  const purg = buildPurgatory(hashed, digest, entryPa, sBoot.pa);
  mem.write(sPurg.pa, purg);
  m.entryPoints.place(sPurg.pa, 'purgatory', purg.subarray(0, PURGATORY.codeSize), (cpu) => runPurgatory(m, cpu, sPurg.pa));
  m.entryPoints.place(entryPa, `startup_64 of ${spec.profile.release}`, kernel.subarray(KERNEL_ENTRY_OFFSET, KERNEL_ENTRY_OFFSET + 4096),
    (cpu) => new CrashKernel(m, spec.profile, cpu, spec.env).boot());

  const segments = [sElf, sPurg, sBoot, sKernel, sInitrd];
  const image: KexecImage = {
    capture: spec,
    segments,
    purgatoryPa: sPurg.pa,
    entryPa,
    bootParamsPa: sBoot.pa,
    elfcorehdr: { start: sElf.pa, end: sElf.pa + sElf.size },
    dumpRanges: hdr.loads,
    cmdline,
    digest: digest.toString('hex'),
  };
  k.kexecImage = image;
  k.step(`kexec_file_load: ${segments.length} segments of ${spec.profile.release} in the crash region, SHA-256 ${image.digest.slice(0, 16)}...`, { segments: segments.length });
  return { ok: true, image };
}
