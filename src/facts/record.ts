/**
 * Tables keyed by what a file says (package names, config keys) are plain objects so that facts
 * survive JSON. A table made here has no prototype, so a key such as `__proto__` stays a key;
 * one read back from JSON has Object's, so lookups go through `entry`.
 */
export function table<V>(): Record<string, V> {
  return Object.create(null) as Record<string, V>;
}

/** The value stored under `key`, never one inherited from Object.prototype. */
export function entry<V>(t: Record<string, V>, key: string): V | undefined {
  return Object.hasOwn(t, key) ? t[key] : undefined;
}
