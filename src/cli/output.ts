// Writing to stdout from commands: synchronous and complete (so a large JSON
// is never cut short by process exit), quiet when the reader went away.

import { renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { InputError } from '../util/errors.js';

export function out(s: string | Uint8Array): void {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  let off = 0;
  while (off < b.length) {
    try {
      off += writeSync(1, b, off, b.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      if ((e as NodeJS.ErrnoException).code === 'EPIPE') return;
      throw e;
    }
  }
}

/** Colour only on a terminal, and never when NO_COLOR is set. */
export function useColor(): boolean {
  return process.stdout.isTTY === true && process.env['NO_COLOR'] === undefined;
}

/** Writes a whole file or nothing: a temporary name first, then a rename. */
export function writeFileAtomic(path: string, text: string, what = 'file'): void {
  const tmp = `${path}.part`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new InputError(`Cannot write ${what} "${path}": ${(e as Error).message}`);
  }
}

