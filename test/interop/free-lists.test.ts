// makedumpfile 1.7.2 excluding free pages from the zones' free lists. With
// NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE) in VMCOREINFO it recognises free blocks by
// their head's _mapcount (page_is_buddy_v3); without it setup_page_is_buddy()
// says "Can't select page_is_buddy handler; follow free lists instead of
// mem_map array." and exclude_free_page() walks contig_page_data's
// free_area[order].free_list[migratetype] through each block head's lru. We
// hide the number by renaming it in the file's VMCOREINFO note (same length,
// so nothing else moves): the pages it then leaves out must be the ones our
// filter leaves out of the unmodified file at the same level. The lists are
// also walked here, from the dump file, with VMCOREINFO's numbers alone.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { excludedFrames } from '../../src/dump/convert.js';
import { openVmcore } from '../../src/dump/vmcore-reader.js';
import { ElfVmcoreReader } from '../../src/dump/elf-vmcore-reader.js';
import { KernelVm, ReaderPhysMemory } from '../../src/dump/kernel-vm.js';
import { PT_NOTE } from '../../src/dump/elf.js';
import { walkFreeLists } from '../kernel/free-list-walk.js';
import { makeDump, probeCommand, removeDump, requireTool, run, type InteropDump, leftOutFrames } from './tools.js';

const haveMakedumpfile = requireTool('makedumpfile', 'makedumpfile', () => probeCommand('makedumpfile', ['-v']));

const KEY = 'NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=';
const HIDDEN = 'NUMBER(XAGE_BUDDY_MAPCOUNT_VALUE)=';
const FALLBACK = 'follow free lists instead of mem_map array';

let dump: InteropDump | undefined;
let spans: { startPfn: number; endPfn: number }[] = [];
/** Our filter's left-out frames at levels 16 and 31 on the unmodified file. */
const ours = new Map<number, Set<number>>();
/** Free blocks the lists hold, read from the unmodified file: pfn -> order. */
let listed = new Map<number, number>();
let hidden = '';

function bitmapFrames(bitmap: Uint8Array): Set<number> {
  const out = new Set<number>();
  for (const s of spans) for (let p = s.startPfn; p < s.endPfn; p++) if ((bitmap[p >>> 3]! >> (p & 7)) & 1) out.add(p);
  return out;
}

/** Frames a kdump-compressed file describes but leaves out. */
const leftOut = (file: string): Set<number> => leftOutFrames(file, spans);

/** A copy of `src` whose VMCOREINFO note (in the PT_NOTE segment, not the kernel's copy in memory) no longer names the buddy mapcount value. */
function hideBuddyValue(src: string, dst: string): void {
  const e = new ElfVmcoreReader(src);
  let at = -1;
  try {
    for (const p of e.programHeaders) {
      if (p.type !== PT_NOTE) continue;
      const buf = Buffer.alloc(Number(p.filesz));
      const fd = fs.openSync(src, 'r');
      fs.readSync(fd, buf, 0, buf.length, Number(p.offset));
      fs.closeSync(fd);
      const i = buf.indexOf(KEY, 0, 'latin1');
      if (i >= 0) at = Number(p.offset) + i;
    }
  } finally {
    e.close();
  }
  if (at < 0) throw new Error(`${KEY} is not in the PT_NOTE of ${src}`);
  // A sparse copy: the file is mostly holes.
  const r = run('cp', ['--sparse=always', src, dst]);
  if (r.status !== 0) throw new Error(`cp failed: ${r.stderr}`);
  const fd = fs.openSync(dst, 'r+');
  fs.writeSync(fd, Buffer.from(HIDDEN, 'latin1'), 0, HIDDEN.length, at);
  fs.closeSync(fd);
}

beforeAll(() => {
  dump = makeDump('free-lists');
  const r = openVmcore(dump.vmcore);
  try {
    spans = r.physRanges().map((x) => ({ startPfn: Math.floor(x.start / 4096), endPfn: Math.ceil(x.end / 4096) }));
    for (const level of [16, 31]) ours.set(level, bitmapFrames(excludedFrames(r, spans, dump.maxPfn, level).bitmap));
    const vi = r.vmcoreinfo!;
    const vm = new KernelVm(vi, new ReaderPhysMemory(r), r.file);
    const phys = new ReaderPhysMemory(r);
    const w = walkFreeLists(vi, (va, n) => {
      const pa = vm.toPhys(va);
      if (pa === undefined) throw new Error(`0x${va.toString(16)} is not mapped in ${r.file}`);
      const b = new Uint8Array(n);
      phys.read(pa, b);
      return b;
    });
    expect(w.problems).toEqual([]);
    listed = new Map([...w.blocks].map(([pfn, b]) => [pfn, b.order]));
  } finally {
    r.close();
  }
  hidden = path.join(dump.dir, 'vmcore.nobuddy');
  hideBuddyValue(dump.vmcore, hidden);
}, 120_000);
afterAll(() => removeDump(dump));

describe('the free lists in the simulator\'s vmcore', () => {
  it('hold exactly the frames our filter leaves out as free at level 16', () => {
    const frames = new Set<number>();
    for (const [pfn, order] of listed) for (let i = 0; i < 2 ** order; i++) frames.add(pfn + i);
    expect(listed.size).toBeGreaterThan(10);
    expect([...frames].filter((p) => !ours.get(16)!.has(p)).slice(0, 10)).toEqual([]);
    expect([...ours.get(16)!].filter((p) => !frames.has(p)).slice(0, 10)).toEqual([]);
  });

  it('the renamed copy differs only in the VMCOREINFO note and no longer says PAGE_BUDDY_MAPCOUNT_VALUE', () => {
    const r = openVmcore(hidden);
    try {
      expect(r.vmcoreinfo!.number('PAGE_BUDDY_MAPCOUNT_VALUE')).toBeUndefined();
      expect(r.vmcoreinfo!.number('XAGE_BUDDY_MAPCOUNT_VALUE')).toBe(-129n);
    } finally {
      r.close();
    }
  });
});

describe.skipIf(!haveMakedumpfile)('makedumpfile -d 16 / -d 31 following the free lists', () => {
  for (const level of [16, 31]) {
    it(`-c -d ${level}: falls back to the free lists and leaves out exactly the frames our filter does on the unmodified file`, () => {
      const out = path.join(dump!.dir, `mdf.lists.d${level}`);
      const res = run('makedumpfile', ['-D', '--message-level', '31', '-c', '-d', String(level), hidden, out]);
      const said = res.stdout + res.stderr;
      expect(res.status, said).toBe(0);
      expect(said).toContain(FALLBACK);
      const theirs = leftOut(out);
      const mine = ours.get(level)!;
      expect([...theirs].filter((p) => !mine.has(p)).slice(0, 10)).toEqual([]);
      expect([...mine].filter((p) => !theirs.has(p)).slice(0, 10)).toEqual([]);
      expect(theirs.size).toBe(mine.size);
      // Its report counts the free pages it found on the lists.
      const free = /Free pages\s*: 0x([0-9a-f]+)/.exec(said);
      expect(free, said).not.toBeNull();
      expect(Number.parseInt(free![1]!, 16)).toBe([...listed.values()].reduce((n, o) => n + 2 ** o, 0));
    });
  }

  it('on the unmodified file it identifies buddy pages by _mapcount and does not walk the lists', () => {
    const out = path.join(dump!.dir, 'mdf.buddy.d16');
    const res = run('makedumpfile', ['-D', '-c', '-d', '16', dump!.vmcore, out]);
    expect(res.status, res.stdout + res.stderr).toBe(0);
    expect(res.stdout + res.stderr).not.toContain(FALLBACK);
    expect(leftOut(out)).toEqual(ours.get(16));
  });
});
