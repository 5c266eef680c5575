// ELF notes: a 12-byte header (n_namesz, n_descsz, n_type), the name with its
// NUL, then the descriptor, each padded to 4 bytes. Core files use 4-byte
// padding even in ELF64. The kernel ends each note buffer with an all-zero
// header, which is also how a reader knows the buffer's real size.

import { VmcoreFormatError } from '../util/errors.js';
import { hex } from '../util/hex.js';

export const NT_PRSTATUS = 1;
/** The VMCOREINFO note has type 0 and name "VMCOREINFO". */
export const NT_VMCOREINFO = 0;
export const VMCOREINFO_NOTE_NAME = 'VMCOREINFO';
/** Name of the per-CPU register notes. */
export const CORE_NOTE_NAME = 'CORE';

export const NOTE_HEADER_SIZE = 12;

export interface ElfNote {
  name: string;
  type: number;
  desc: Uint8Array;
}

/** A decoded note with where it sat in the file, for error messages further on. */
export interface LocatedNote {
  note: ElfNote;
  /** File offset of the note header. */
  offset: number;
  /** File offset of the descriptor. */
  descOffset: number;
}

function pad4(n: number): number {
  return Math.ceil(n / 4) * 4; // arithmetic, not bit ops: sizes can exceed 2^31
}

/** Bytes one note occupies when encoded (header, padded name, padded desc). */
export function noteSize(note: ElfNote): number {
  return NOTE_HEADER_SIZE + pad4(note.name.length + 1) + pad4(note.desc.length);
}

export function encodeNotes(notes: readonly ElfNote[], opts?: { terminator?: boolean }): Uint8Array {
  let total = opts?.terminator ? NOTE_HEADER_SIZE : 0;
  for (const n of notes) {
    if (n.name.includes('\0') || /[^\x01-\xff]/.test(n.name)) {
      throw new RangeError(`Cannot encode note "${n.name}": the name must be Latin-1 text without NUL`);
    }
    if (!Number.isInteger(n.type) || n.type < 0 || n.type > 0xffffffff) {
      throw new RangeError(`Cannot encode note "${n.name}": type ${n.type} does not fit 32 bits`);
    }
    total += noteSize(n);
  }
  const buf = new Uint8Array(total);
  const v = new DataView(buf.buffer);
  let off = 0;
  for (const n of notes) {
    v.setUint32(off, n.name.length + 1, true); // canonical n_namesz counts the NUL
    v.setUint32(off + 4, n.desc.length, true);
    v.setUint32(off + 8, n.type, true);
    off += NOTE_HEADER_SIZE;
    for (let i = 0; i < n.name.length; i++) buf[off + i] = n.name.charCodeAt(i);
    off += pad4(n.name.length + 1);
    buf.set(n.desc, off);
    off += pad4(n.desc.length);
  }
  // The terminator (if asked for) is already zero.
  return buf;
}

/**
 * Walks notes in `buf`, which sits at file offset `where.offset`. Stops at a
 * header with n_namesz == 0 (the kernel's terminator) or at the end; trailing
 * bytes shorter than a header are accepted only if zero (padding).
 */
export function decodeNotesAt(buf: Uint8Array, where: { file: string; offset: number }): LocatedNote[] {
  const out: LocatedNote[] = [];
  const v = new DataView(buf.buffer, buf.byteOffset, buf.length);
  let off = 0;
  while (off < buf.length) {
    const at = where.offset + off;
    const left = buf.length - off;
    if (left < NOTE_HEADER_SIZE) {
      if (buf.subarray(off).every((b) => b === 0)) break;
      throw new VmcoreFormatError(
        `Cannot read note at offset ${hex(at)} of "${where.file}": only ${left} bytes left, a note header needs ${NOTE_HEADER_SIZE}`,
        { file: where.file, offset: at, field: 'n_namesz' },
      );
    }
    const namesz = v.getUint32(off, true);
    const descsz = v.getUint32(off + 4, true);
    const type = v.getUint32(off + 8, true);
    if (namesz === 0) break;
    // Sizes are checked one at a time so no sum can overflow or mislead.
    const nameStart = off + NOTE_HEADER_SIZE;
    const roomForName = buf.length - nameStart;
    if (namesz > roomForName) {
      throw new VmcoreFormatError(
        `Cannot read note at offset ${hex(at)} of "${where.file}": n_namesz ${hex(namesz)} runs past the end of the note segment (${hex(roomForName)} bytes left)`,
        { file: where.file, offset: at, field: 'n_namesz' },
      );
    }
    const descStart = nameStart + pad4(namesz);
    const roomForDesc = buf.length - descStart;
    if (roomForDesc < 0 || descsz > roomForDesc) {
      throw new VmcoreFormatError(
        `Cannot read note at offset ${hex(at)} of "${where.file}": n_descsz ${hex(descsz)} runs past the end of the note segment (${hex(Math.max(0, roomForDesc))} bytes left)`,
        { file: where.file, offset: at, field: 'n_descsz' },
      );
    }
    // Accept n_namesz with or without the NUL, as libkdumpfile does.
    let nameEnd = nameStart + namesz;
    while (nameEnd > nameStart && buf[nameEnd - 1] === 0) nameEnd--;
    let name = '';
    for (let i = nameStart; i < nameEnd; i++) name += String.fromCharCode(buf[i] ?? 0);
    out.push({
      note: { name, type, desc: buf.slice(descStart, descStart + descsz) },
      offset: at,
      descOffset: where.offset + descStart,
    });
    // The last note's desc padding may be cut off by p_filesz; that is harmless.
    off = Math.min(buf.length, descStart + pad4(descsz));
  }
  return out;
}

export function decodeNotes(buf: Uint8Array, where: { file: string; offset: number }): ElfNote[] {
  return decodeNotesAt(buf, where).map((n) => n.note);
}
