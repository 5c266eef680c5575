// Built-in scenarios ship in the package's scenarios/ folder.

import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export function builtinScenario(name: string): string {
  // src/cli or dist/cli -> package root
  return join(fileURLToPath(new URL('../../', import.meta.url)), 'scenarios', name);
}
