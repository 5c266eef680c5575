// ELF64 little-endian headers as they appear in a vmcore: the 64-byte file
// header and the 56-byte program headers. Only the parts a core file uses are
// modelled; section headers matter only for PN_XNUM, which the reader resolves.

import { VmcoreFormatError } from '../util/errors.js';

export const ELFMAG = Uint8Array.of(0x7f, 0x45, 0x4c, 0x46); // "\x7fELF"
export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const EV_CURRENT = 1;
export const ELFOSABI_NONE = 0;

export const ET_CORE = 4;
export const EM_X86_64 = 62;

export const PT_LOAD = 1;
export const PT_NOTE = 4;

export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

export const EHDR_SIZE = 64;
export const PHDR_SIZE = 56;
export const SHDR_SIZE = 64;

/** e_phnum value meaning "the real count is in section header 0's sh_info". */
export const PN_XNUM = 0xffff;

/** QEMU 7.2 writes e_ehsize = sizeof(pointer) = 8 (a bug); its dumps are otherwise fine. */
const QEMU_BUGGY_EHSIZE = 8;

export interface ElfHeader {
  osabi: number;
  type: number;
  machine: number;
  version: number;
  entry: bigint;
  phoff: bigint;
  shoff: bigint;
  flags: number;
  ehsize: number;
  phentsize: number;
  /** Raw e_phnum; PN_XNUM means the count lives in section header 0. */
  phnum: number;
  shentsize: number;
  shnum: number;
  shstrndx: number;
}

export interface ProgramHeader {
  type: number;
  flags: number;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  align: bigint;
}

/** An x86_64 ET_CORE header with the program headers right after it, as the kernel and kexec-tools write it. */
export function encodeElfHeader(h: { phnum: number; flags?: number }): Uint8Array {
  if (!Number.isInteger(h.phnum) || h.phnum < 0 || h.phnum >= PN_XNUM) {
    throw new RangeError(`Cannot encode ELF header: e_phnum ${h.phnum} is outside 0..${PN_XNUM - 1}`);
  }
  const flags = h.flags ?? 0;
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xffffffff) {
    throw new RangeError(`Cannot encode ELF header: e_flags ${flags} does not fit 32 bits`);
  }
  const buf = new Uint8Array(EHDR_SIZE);
  const v = new DataView(buf.buffer);
  buf.set(ELFMAG, 0);
  buf[4] = ELFCLASS64;
  buf[5] = ELFDATA2LSB;
  buf[6] = EV_CURRENT;
  buf[7] = ELFOSABI_NONE;
  v.setUint16(16, ET_CORE, true);
  v.setUint16(18, EM_X86_64, true);
  v.setUint32(20, EV_CURRENT, true);
  v.setBigUint64(24, 0n, true); // e_entry
  v.setBigUint64(32, BigInt(EHDR_SIZE), true); // e_phoff
  v.setBigUint64(40, 0n, true); // e_shoff
  v.setUint32(48, flags, true);
  v.setUint16(52, EHDR_SIZE, true);
  v.setUint16(54, PHDR_SIZE, true);
  v.setUint16(56, h.phnum, true);
  return buf;
}

/** Decodes and sanity-checks the identification and sizes; does not judge e_type or e_machine. */
export function decodeElfHeader(buf: Uint8Array, file: string): ElfHeader {
  const what = `Cannot read the ELF header of "${file}"`;
  if (buf.length < EHDR_SIZE) {
    throw new VmcoreFormatError(`${what}: only ${buf.length} bytes, an ELF64 header needs ${EHDR_SIZE}`, { file, offset: 0 });
  }
  for (let i = 0; i < ELFMAG.length; i++) {
    if (buf[i] !== ELFMAG[i]) {
      const got = Array.from(buf.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
      throw new VmcoreFormatError(`${what}: magic is "${got}", expected "7f 45 4c 46"`, { file, offset: 0, field: 'e_ident' });
    }
  }
  const cls = buf[4] ?? 0;
  if (cls !== ELFCLASS64) {
    throw new VmcoreFormatError(`${what}: EI_CLASS is ${cls}, only ELFCLASS64 (2) is supported`, { file, offset: 4, field: 'EI_CLASS' });
  }
  const data = buf[5] ?? 0;
  if (data !== ELFDATA2LSB) {
    throw new VmcoreFormatError(`${what}: EI_DATA is ${data}, only little-endian (1) is supported`, { file, offset: 5, field: 'EI_DATA' });
  }
  const identVersion = buf[6] ?? 0;
  if (identVersion !== EV_CURRENT) {
    throw new VmcoreFormatError(`${what}: EI_VERSION is ${identVersion}, expected 1`, { file, offset: 6, field: 'EI_VERSION' });
  }
  const v = new DataView(buf.buffer, buf.byteOffset, EHDR_SIZE);
  const h: ElfHeader = {
    osabi: buf[7] ?? 0,
    type: v.getUint16(16, true),
    machine: v.getUint16(18, true),
    version: v.getUint32(20, true),
    entry: v.getBigUint64(24, true),
    phoff: v.getBigUint64(32, true),
    shoff: v.getBigUint64(40, true),
    flags: v.getUint32(48, true),
    ehsize: v.getUint16(52, true),
    phentsize: v.getUint16(54, true),
    phnum: v.getUint16(56, true),
    shentsize: v.getUint16(58, true),
    shnum: v.getUint16(60, true),
    shstrndx: v.getUint16(62, true),
  };
  if (h.version !== EV_CURRENT) {
    throw new VmcoreFormatError(`${what}: e_version is ${h.version}, expected 1`, { file, offset: 20, field: 'e_version' });
  }
  if (h.ehsize !== EHDR_SIZE && h.ehsize !== QEMU_BUGGY_EHSIZE) {
    throw new VmcoreFormatError(`${what}: e_ehsize is ${h.ehsize}, expected ${EHDR_SIZE}`, { file, offset: 52, field: 'e_ehsize' });
  }
  if (h.phentsize !== PHDR_SIZE && h.phnum !== 0) {
    throw new VmcoreFormatError(`${what}: e_phentsize is ${h.phentsize}, expected ${PHDR_SIZE}`, { file, offset: 54, field: 'e_phentsize' });
  }
  return h;
}

const U64_MAX = (1n << 64n) - 1n;

function checkU64(p: ProgramHeader, field: keyof ProgramHeader): bigint {
  const x = p[field];
  if (typeof x !== 'bigint' || x < 0n || x > U64_MAX) {
    throw new RangeError(`Cannot encode program header: ${field} ${String(x)} does not fit 64 bits`);
  }
  return x;
}

function checkU32(p: ProgramHeader, field: 'type' | 'flags'): number {
  const x = p[field];
  if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) {
    throw new RangeError(`Cannot encode program header: ${field} ${x} does not fit 32 bits`);
  }
  return x;
}

export function encodeProgramHeader(p: ProgramHeader, dst: DataView, off: number): void {
  dst.setUint32(off, checkU32(p, 'type'), true);
  dst.setUint32(off + 4, checkU32(p, 'flags'), true);
  dst.setBigUint64(off + 8, checkU64(p, 'offset'), true);
  dst.setBigUint64(off + 16, checkU64(p, 'vaddr'), true);
  dst.setBigUint64(off + 24, checkU64(p, 'paddr'), true);
  dst.setBigUint64(off + 32, checkU64(p, 'filesz'), true);
  dst.setBigUint64(off + 40, checkU64(p, 'memsz'), true);
  dst.setBigUint64(off + 48, checkU64(p, 'align'), true);
}

export function decodeProgramHeader(view: DataView, off: number): ProgramHeader {
  return {
    type: view.getUint32(off, true),
    flags: view.getUint32(off + 4, true),
    offset: view.getBigUint64(off + 8, true),
    vaddr: view.getBigUint64(off + 16, true),
    paddr: view.getBigUint64(off + 24, true),
    filesz: view.getBigUint64(off + 32, true),
    memsz: view.getBigUint64(off + 40, true),
    align: view.getBigUint64(off + 48, true),
  };
}

/** Section header 0's sh_info, where the real phdr count lives under PN_XNUM. */
export function decodeXnumPhnum(shdr0: Uint8Array): number {
  const v = new DataView(shdr0.buffer, shdr0.byteOffset, shdr0.length);
  return v.getUint32(44, true);
}
