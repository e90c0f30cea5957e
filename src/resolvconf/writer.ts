// Write the files bind-mounted into containers in place, and leave alone a file the user edited.
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';

/** Hex SHA-256 of the UTF-8 bytes: what the container record keeps as "last written". */
export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

const isNotFound = (e: unknown): boolean => (e as NodeJS.ErrnoException | null)?.code === 'ENOENT';

/**
 * Overwrite `path` keeping its inode (open r+, write, truncate), or create it (0644). Never rename:
 * a bind mount pins the inode, so a file renamed over the source stays invisible in the container.
 */
export async function writeInPlace(path: string, text: string): Promise<string> {
  const bytes = Buffer.from(text, 'utf8');
  let fh;
  try {
    fh = await open(path, 'r+');
  } catch (e) {
    if (!isNotFound(e)) throw e;
    fh = await open(path, 'w', 0o644);
  }
  try {
    await fh.write(bytes, 0, bytes.length, 0);
    await fh.truncate(bytes.length);
  } finally {
    await fh.close();
  }
  return sha256(bytes);
}

export interface RewriteResult {
  written: boolean;
  hash: string; // the hash to record as "last written by dnsnet"
  edited: boolean; // someone else changed the file: it was left alone
}

/**
 * Write `text` unless the file no longer holds what dnsnet last wrote (`lastHash`).
 * - no `lastHash` (never written): write.
 * - the file already holds `text`: no write, not edited (also heals a crash between a write and
 *   the saving of its hash).
 * - the file holds what dnsnet last wrote: write.
 * - anything else, a missing file included, is an edit: no write, `hash` stays `lastHash`.
 *   (dnsnet never removes these files; recreating one would not reach a running container.)
 */
export async function rewriteIfUnedited(
  path: string,
  text: string,
  lastHash: string | undefined,
): Promise<RewriteResult> {
  const wanted = sha256(text);
  let current: string | undefined;
  try {
    current = sha256(await readFile(path));
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  if (current === wanted) return { written: false, hash: wanted, edited: false };
  if (lastHash === undefined || current === lastHash) {
    return { written: true, hash: await writeInPlace(path, text), edited: false };
  }
  return { written: false, hash: lastHash, edited: true };
}
