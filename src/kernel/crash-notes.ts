// crash_save_cpu(): each CPU's registers as an NT_PRSTATUS note in its
// crash_notes buffer (note_buf_t: the note plus a terminating empty header).

import { encodeNotes, NT_PRSTATUS } from '../dump/elf-note.js';
import { encodePrStatus } from '../dump/prstatus.js';
import type { Cpu } from '../platform/cpu/cpu.js';
import type { PhysAccess } from './phys-access.js';

/** sizeof(note_buf_t) on x86_64: two note headers, the "CORE" name, elf_prstatus. */
export const CRASH_NOTE_BYTES = 2 * 12 + 8 + 336;

/** The pid recorded for each CPU: the idle task (0) unless the CPU ran `pid`. */
export function crashSaveCpu(mem: PhysAccess, cpu: Cpu, notePa: number, pid: number): void {
  const desc = encodePrStatus({ pid, regs: { ...cpu.regs } });
  const note = encodeNotes([{ name: 'CORE', type: NT_PRSTATUS, desc }], { terminator: true });
  const buf = new Uint8Array(CRASH_NOTE_BYTES);
  buf.set(note.subarray(0, CRASH_NOTE_BYTES));
  mem.write(notePa, buf);
}
