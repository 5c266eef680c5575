// `kdumpsim vmcore info | read | verify`: tools that work on any vmcore file,
// ours or a real kernel's.

import { openVmcoreFiles, type VmcoreReader } from '../dump/vmcore-reader.js';
import { SplitKdumpReader } from '../dump/split-kdump-reader.js';
import { ElfVmcoreReader } from '../dump/elf-vmcore-reader.js';
import { readTruthManifest } from '../dump/truth-manifest.js';
import { verifyVmcore } from '../dump/verify.js';
import { PT_LOAD, PT_NOTE } from '../dump/elf.js';
import { InputError, UsageError } from '../util/errors.js';
import { MAX_DUMP_LEVEL } from '../dump/page-class.js';
import { parseSize } from '../util/units.js';
import { progressBar } from './progress.js';

/**
 * Opens a vmcore, or several files as the parts of one split dump
 * (makedumpfile --split), turning "no such file" and friends into input errors.
 */
export function openInput(file: string | readonly string[]): VmcoreReader {
  const files = typeof file === 'string' ? [file] : file;
  try {
    return openVmcoreFiles(files);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (typeof err.code === 'string' && err.syscall !== undefined) throw new InputError(`Cannot open vmcore "${err.path ?? files.join(' + ')}": ${err.message}`);
    throw e;
  }
}

export function vmcoreInfo(file: string | readonly string[], json: boolean): string {
  const r = openInput(file);
  try {
    const info = describe(r);
    if (json) return JSON.stringify(info, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2) + '\n';
    const out: string[] = [];
    out.push(`File:        ${r.file}`);
    out.push(`Format:      ${r.format}`);
    out.push(`Size:        ${r.fileSize} bytes`);
    out.push(`Page size:   ${r.pageSize}`);
    if (info.splitParts.length > 0) {
      out.push(`Split parts: ${info.splitParts.length}`);
      for (const p of info.splitParts) out.push(`  ${p.file}: frames 0x${p.startPfn.toString(16)}-0x${p.endPfn.toString(16)}, ${p.pages} pages`);
    }
    if (info.osrelease) out.push(`OSRELEASE:   ${info.osrelease}`);
    if (info.crashtime) out.push(`CRASHTIME:   ${info.crashtime}`);
    out.push(`Memory:      ${info.physBytes} bytes in ${info.physRanges.length} ranges`);
    for (const pr of info.physRanges) out.push(`  0x${pr.start.toString(16).padStart(12, '0')}-0x${(pr.end - 1).toString(16).padStart(12, '0')}`);
    if (info.segments.length > 0) {
      out.push('Program headers:');
      out.push('  type     offset           paddr            vaddr              filesz       memsz');
      for (const s of info.segments) {
        out.push(`  ${s.type.padEnd(8)} 0x${s.offset.toString(16).padStart(14, '0')} 0x${s.paddr.toString(16).padStart(14, '0')} 0x${s.vaddr.toString(16).padStart(16, '0')} 0x${s.filesz.toString(16).padStart(10, '0')} 0x${s.memsz.toString(16).padStart(10, '0')}`);
      }
    }
    out.push(`Notes:       ${info.notes.map((n) => `${n.name}/${n.type}`).join(', ') || '(none)'}`);
    info.cpus.forEach((c, i) => out.push(`  CPU ${i}: pid ${c.pid} rip 0x${c.rip.toString(16)} rsp 0x${c.rsp.toString(16)}`));
    if (info.vmcoreinfoLines > 0) out.push(`VMCOREINFO:  ${info.vmcoreinfoLines} lines`);
    return out.join('\n') + '\n';
  } finally {
    r.close();
  }
}

function describe(r: VmcoreReader) {
  const vi = r.vmcoreinfo;
  const ranges = r.physRanges();
  return {
    file: r.file,
    format: r.format,
    fileSize: r.fileSize,
    pageSize: r.pageSize,
    splitParts: r instanceof SplitKdumpReader
      ? r.parts.map((p) => ({ file: p.file, startPfn: p.split?.startPfn ?? 0, endPfn: p.split?.endPfn ?? 0, pages: p.dumpedPages }))
      : [],
    osrelease: vi?.get('OSRELEASE'),
    crashtime: vi?.get('CRASHTIME'),
    physRanges: ranges.map((x) => ({ start: x.start, end: x.end })),
    physBytes: ranges.reduce((n, x) => n + (x.end - x.start), 0),
    segments: r instanceof ElfVmcoreReader
      ? r.programHeaders.map((p) => ({ type: programTypeName(p.type), offset: p.offset, paddr: p.paddr, vaddr: p.vaddr, filesz: p.filesz, memsz: p.memsz }))
      : [],
    notes: r.notes.map((n) => ({ name: n.name, type: n.type, size: n.desc.length })),
    cpus: r.prstatus.map((p) => ({ pid: p.pid, rip: p.regs.rip, rsp: p.regs.rsp })),
    vmcoreinfoLines: vi === undefined ? 0 : vi.toText().split('\n').filter(Boolean).length,
    vmcoreinfo: vi?.toText(),
  };
}

function programTypeName(t: number): string {
  return t === PT_LOAD ? 'LOAD' : t === PT_NOTE ? 'NOTE' : `0x${t.toString(16)}`;
}

/** Largest read `vmcore read` allows in one go, so a typo cannot ask for terabytes. */
export const MAX_READ = 256 * 2 ** 20;

export function vmcoreRead(file: string, physArg: string, sizeArg: string, hexOut: boolean): Uint8Array | string {
  const phys = parseSize(physArg);
  if (phys === undefined) throw new UsageError(`Cannot read: --phys "${physArg}" is not an address (use 0x1000 or 4096)`);
  const size = parseSize(sizeArg);
  if (size === undefined || size === 0) throw new UsageError(`Cannot read: --size "${sizeArg}" is not a positive size`);
  if (size > MAX_READ) throw new UsageError(`Cannot read: --size ${size} exceeds the ${MAX_READ}-byte limit of one read`);
  const r = openInput(file);
  try {
    const bytes = r.readPhys(phys, size);
    return hexOut ? hexdump(bytes, phys) : bytes;
  } finally {
    r.close();
  }
}

export function hexdump(b: Uint8Array, base: number): string {
  const lines: string[] = [];
  for (let o = 0; o < b.length; o += 16) {
    const row = b.subarray(o, Math.min(o + 16, b.length));
    const hx = Array.from(row, (x) => x.toString(16).padStart(2, '0')).join(' ');
    const asc = Array.from(row, (x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('');
    lines.push(`${(base + o).toString(16).padStart(12, '0')}  ${hx.padEnd(47)}  |${asc}|`);
  }
  return lines.join('\n') + '\n';
}

/** Parses --dump-level: makedumpfile's -d, 0 to 31. */
export function parseDumpLevel(v: string): number {
  if (!/^\d{1,2}$/.test(v) || Number(v) > MAX_DUMP_LEVEL) throw new UsageError(`Cannot use --dump-level "${v}": expected an integer from 0 to ${MAX_DUMP_LEVEL}`);
  return Number(v);
}

/** dumpLevel: the level the file was filtered at; default the one its kdump header records, else 0. */
export function vmcoreVerify(file: string | readonly string[], truthFile: string, json: boolean, dumpLevel?: number): { text: string; ok: boolean } {
  const truth = readTruthManifest(truthFile);
  const r = openInput(file);
  const bar = progressBar('verifying');
  try {
    const rep = verifyVmcore(r, truth, { onProgress: (d, t) => bar.update(d, t), ...(dumpLevel === undefined ? {} : { dumpLevel }) });
    bar.done();
    const ok = rep.mismatches === 0;
    if (json) return { text: JSON.stringify({ file: r.file, truth: truthFile, ok, ...rep }, null, 2) + '\n', ok };
    const excluded = Object.entries(rep.pagesExcluded).map(([k, n]) => `${n} ${k}`);
    const lines = [
      `${ok ? 'OK' : 'FAILED'}: ${rep.pagesEqual} of ${rep.pagesChecked} pages match the truth manifest` +
        (rep.pagesChangedAfterPanic ? ` (${rep.pagesChangedAfterPanic} as changed by legitimate DMA after the panic)` : ''),
    ];
    if (excluded.length > 0) lines.push(`  left out as dump level ${rep.dumpLevel} allows: ${excluded.join(', ')}`);
    for (const m of rep.firstMismatches) {
      const detail = m.problem === 'differs' ? ` (expected ${m.expected.slice(0, 12)}, found ${m.actual.slice(0, 12)})`
        : m.problem === 'excluded' ? ` (the page was ${m.was ?? 'in use'}, which dump level ${rep.dumpLevel} keeps)` : '';
      lines.push(`  page 0x${(m.pfn * 4096).toString(16)}: ${m.problem}${detail}`);
    }
    if (rep.mismatches > rep.firstMismatches.length) lines.push(`  ... ${rep.mismatches - rep.firstMismatches.length} more`);
    return { text: lines.join('\n') + '\n', ok };
  } finally {
    bar.done();
    r.close();
  }
}
