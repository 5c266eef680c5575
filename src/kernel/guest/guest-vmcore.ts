// The guest capture kernel's vmcore: an ELF core laid out as /proc/vmcore,
// with a VMCOREINFO note (the few entries this guest model can back: release,
// page size, crash time) and one PT_LOAD over old guest memory below the
// reservation, holding the bytes the capture kernel read through the guest
// key. Guest-physical addresses are the ELF's physical addresses.

import { writeElfVmcore, type ElfVmcoreWriteResult } from '../../dump/elf-vmcore-writer.js';
import { encodeNotes } from '../../dump/elf-note.js';
import { MapPageSource } from '../../dump/page-source.js';
import { VmcoreInfo } from '../../dump/vmcoreinfo.js';
import { PAGE_OFFSET } from '../layout.js';
import { PAGE } from './layout.js';

export interface GuestVmcoreSpec {
  readonly release: string;
  /** Virtual seconds at the panic (CRASHTIME). */
  readonly crashTime: number;
  /** Old memory [0, top) as read, by GPA. */
  readonly pages: ReadonlyMap<number, Uint8Array>;
  readonly top: number;
}

export function writeGuestVmcore(path: string, spec: GuestVmcoreSpec): ElfVmcoreWriteResult {
  const vi = new VmcoreInfo();
  vi.set('OSRELEASE', spec.release);
  vi.set('PAGESIZE', String(PAGE));
  vi.set('CRASHTIME', String(Math.floor(spec.crashTime)));
  const notes = encodeNotes([{ name: 'VMCOREINFO', type: 0, desc: new TextEncoder().encode(vi.toText()) }]);
  const frames = new Map<number, Uint8Array>();
  for (const [gpa, bytes] of spec.pages) frames.set(gpa / PAGE, bytes);
  return writeElfVmcore(path, {
    notes,
    loads: [{ paddr: 0, vaddr: PAGE_OFFSET, memsz: spec.top }],
    source: new MapPageSource(frames),
  });
}
