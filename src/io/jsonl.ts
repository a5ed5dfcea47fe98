/** Reading the append-only JSONL record files of resumable jobs. */
import { existsSync, readFileSync, truncateSync } from 'node:fs';

/**
 * The JSON values of a records file, one per non-blank line, with their 1-based line numbers (a
 * missing file has none). A torn last line (a kill mid-append: no closing newline) is dropped and,
 * with `repair`, cut from the file so later appends start on a clean line; a line that does not parse
 * anywhere else is an error naming the file and line.
 */
export function readJsonLines(path: string, { repair = false }: { repair?: boolean } = {}): { value: unknown; line: number }[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  if (repair && text.length > 0 && !text.endsWith('\n')) truncateSync(path, Buffer.byteLength(text.slice(0, text.lastIndexOf('\n') + 1)));
  const out: { value: unknown; line: number }[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    try {
      out.push({ value: JSON.parse(line), line: i + 1 });
    } catch {
      if (i === lines.length - 1 && !text.endsWith('\n')) return;
      throw new Error(`${path}:${i + 1}: not a JSON record`);
    }
  });
  return out;
}
