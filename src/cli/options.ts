/** Option parsers the subcommands share (values as commander gives them, errors naming the flag). */

/** Collect a repeatable option into a list. */
export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** A comma-separated list, blanks dropped. */
export const list = (v: string): string[] => v.split(',').map((s) => s.trim()).filter(Boolean);

/** An integer option (undefined when absent), with the flag's name in the error. */
export function intOption(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n)) throw new Error(`${flag}: must be an integer, got "${v}"`);
  return n;
}

/** A finite number option (undefined when absent), with the flag's name in the error. */
export function numberOption(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new Error(`${flag}: must be a number, got "${v}"`);
  return n;
}

/** A comma-separated list of integers, the flag named in errors. */
export const intList = (v: string, flag: string): number[] => list(v).map((s) => intOption(s, flag)!);
