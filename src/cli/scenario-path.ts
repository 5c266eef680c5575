// Built-in scenarios ship in the package's scenarios/ folder, the doctor's
// example bundles in test/fixtures/doctor/.

import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export function builtinScenario(name: string): string {
  return builtinFile(join('scenarios', name));
}

/** A file shipped with the package (scenarios, the doctor's example bundles), by its path in the package. */
export function builtinFile(rel: string): string {
  // src/cli or dist/cli -> package root
  return join(fileURLToPath(new URL('../../', import.meta.url)), rel);
}
