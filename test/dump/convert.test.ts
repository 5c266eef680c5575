import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeElfVmcore } from '../../src/dump/elf-vmcore-writer.js';
import { MapPageSource } from '../../src/dump/page-source.js';
import { encodeNotes } from '../../src/dump/elf-note.js';
import { openVmcore } from '../../src/dump/vmcore-reader.js';
import { convertVmcore } from '../../src/dump/convert.js';

describe('vmcore convert', () => {
  it('ELF -> kdump-compressed -> ELF keeps every page, the notes and VMCOREINFO', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kdumpsim-convert-'));
    try {
      const frames = new Map<number, Uint8Array>();
      for (const pfn of [0x100, 0x101, 0x180, 0x1ff, 0x400, 0x7ff]) {
        const p = new Uint8Array(4096);
        for (let i = 0; i < p.length; i++) p[i] = (pfn * 7 + i * (pfn % 5 === 0 ? 1 : 13)) & 0xff;
        frames.set(pfn, p);
      }
      const notes = encodeNotes([{ name: 'VMCOREINFO', type: 0, desc: new TextEncoder().encode('OSRELEASE=6.1.0-test\nPAGESIZE=4096\n') }]);
      const elf = join(dir, 'a.elf');
      writeElfVmcore(elf, {
        notes,
        loads: [
          { paddr: 0x100000, vaddr: 0xffff888000100000n, memsz: 0x100000 },
          { paddr: 0x400000, vaddr: 0xffff888000400000n, memsz: 0x400000 },
        ],
        source: new MapPageSource(frames),
      });
      const a = openVmcore(elf);
      const kd = join(dir, 'b.kdump');
      const r1 = convertVmcore(a, kd, 'kdump');
      a.close();
      expect(r1.pages).toBe(0x100 + 0x400);
      const b = openVmcore(kd);
      expect(b.format).toBe('kdump');
      expect(b.vmcoreinfo?.get('OSRELEASE')).toBe('6.1.0-test');
      const back = join(dir, 'c.elf');
      convertVmcore(b, back, 'elf');
      b.close();
      const c = openVmcore(back);
      const page = new Uint8Array(4096);
      for (const r of [[0x100, 0x200], [0x400, 0x800]] as const) {
        for (let pfn = r[0]; pfn < r[1]; pfn++) {
          expect(c.readPage(pfn, page)).toBe('present');
          const want = frames.get(pfn) ?? new Uint8Array(4096);
          expect(Buffer.compare(page, want), `pfn 0x${pfn.toString(16)}`).toBe(0);
        }
      }
      expect(c.readPage(0x300, page)).toBe('absent');
      expect(c.vmcoreinfo?.get('OSRELEASE')).toBe('6.1.0-test');
      c.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
