// Checks for the online trainers' options that resolveArgs cannot type (those whose default is null), and the
// batch arithmetic they share.

export function optionError(source: string, key: string, want: string, got: unknown): Error {
  return new Error(`${source}: option '${key}' must be ${want}, got ${JSON.stringify(got)}`);
}

/** null, or an integer >= min. */
export function nullableInt(source: string, key: string, v: unknown, min: number): number | null {
  if (v === null || v === undefined) return null;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min) throw optionError(source, key, `null or an integer >= ${min}`, v);
  return n;
}

/** null, or a finite number >= min. */
export function nullableNumber(source: string, key: string, v: unknown, min: number): number | null {
  if (v === null || v === undefined) return null;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < min) throw optionError(source, key, `null or a number >= ${min}`, v);
  return n;
}

export function positiveInt(source: string, key: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw optionError(source, key, 'a positive integer', v);
}

export function numberIn(source: string, key: string, v: number, lo: number, hi: number): void {
  if (!(v >= lo && v <= hi)) throw optionError(source, key, `a number in [${lo}, ${hi}]`, v);
}

export function oneOf<T extends string>(source: string, key: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !allowed.includes(v as T)) throw optionError(source, key, `one of ${allowed.join(', ')}`, v);
  return v as T;
}
