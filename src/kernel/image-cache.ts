// Generated image contents (kernel text, bzImage, initramfs) depend only on
// their inputs, so back-to-back runs with the same seed and release share
// them instead of generating and allocating tens of MiB each time. Callers
// must treat the returned bytes as read-only.

const cache = new Map<string, Uint8Array>();
const MAX_ENTRIES = 8;

export function cachedBytes(key: string, make: () => Uint8Array): Uint8Array {
  const hit = cache.get(key);
  if (hit !== undefined) {
    // Most recently used last, so eviction takes the oldest.
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const bytes = make();
  cache.set(key, bytes);
  if (cache.size > MAX_ENTRIES) cache.delete(cache.keys().next().value!);
  return bytes;
}
