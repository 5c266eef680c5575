// Merging of scenario-like data: maps merge key by key, lists and scalars
// are replaced by the overriding side, and null removes a key.

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sets a property as plain data (a key named "__proto__" included). */
export function put(o: Record<string, unknown> | unknown[], key: string | number, v: unknown): void {
  // defineProperty, so a key named "__proto__" is data, never a prototype change.
  Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true });
}

export function deepMerge(base: unknown, patch: unknown): unknown {
  if (patch === undefined) return structuredClone(base);
  if (!isPlainObject(base) || !isPlainObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(base)) put(out, k, v);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else put(out, k, Object.prototype.hasOwnProperty.call(out, k) ? deepMerge(out[k], v) : structuredClone(v));
  }
  return out;
}
