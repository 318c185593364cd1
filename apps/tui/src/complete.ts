/** Tab completion of a path typed in the publish screen, relative to the working directory. */
import { readdir } from 'node:fs/promises';
import { resolve } from 'node:path';

export interface Completion {
  /** The input after completion (unchanged when nothing matched). */
  value: string;
  /** The candidates when more than one matched (directories end in "/"). */
  candidates: string[];
}

function commonPrefix(items: readonly string[]): string {
  if (items.length === 0) return '';
  let prefix = items[0]!;
  for (const s of items) while (!s.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return prefix;
}

/** Complete the last path segment of `input` against the entries of its folder (only folders and .tar files). */
export async function completePath(input: string, cwd: string): Promise<Completion> {
  const cut = input.lastIndexOf('/') + 1;
  const dirPart = input.slice(0, cut);
  const base = input.slice(cut);
  let entries;
  try {
    entries = await readdir(resolve(cwd, dirPart || '.'), { withFileTypes: true });
  } catch {
    return { value: input, candidates: [] };
  }
  const matches = entries
    .filter((e) => e.name.startsWith(base) && (e.isDirectory() || e.name.endsWith('.tar')) && (base.startsWith('.') || !e.name.startsWith('.')))
    .map((e) => (e.isDirectory() ? `${e.name}/` : e.name))
    .sort();
  if (matches.length === 0) return { value: input, candidates: [] };
  if (matches.length === 1) return { value: dirPart + matches[0]!, candidates: [] };
  return { value: dirPart + commonPrefix(matches), candidates: matches };
}
