// Writing a file so that its final name never holds half of it: the body
// writes to `out.part`, renamed to `out` on success and removed on failure.

import * as fs from 'node:fs';

export function withPartFile<T>(outPath: string, body: (fd: number) => T): T {
  const part = `${outPath}.part`;
  const fd = fs.openSync(part, 'w+'); // readable too: a writer may read back what it wrote
  let ok = false;
  try {
    const r = body(fd);
    ok = true;
    return r;
  } finally {
    fs.closeSync(fd);
    if (ok) fs.renameSync(part, outPath);
    else fs.rmSync(part, { force: true });
  }
}
