// One image layer from its blob to a directory that overlayfs can stack: gunzip, check the uncompressed
// bytes against the config's diff_id, untar (node-tar: no absolute paths, no `..`), and turn the OCI
// whiteouts into overlayfs's own (`.wh.NAME` -> a 0/0 character device NAME; `.wh..wh..opq` -> the
// directory's trusted.overlay.opaque=y), with mknod and setfattr.
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { x as untar } from 'tar';
import { DnsnetError } from '../errors.js';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

export type Compression = 'gzip' | 'none';

/** The compression a layer's media type names (zstd: refused, Node 20 cannot read it). */
export function layerCompression(mediaType: string): Compression {
  if (/zstd/.test(mediaType)) throw new DnsnetError('invalid', `layer media type ${mediaType}: zstd layers cannot be read by Node ${process.versions.node} (no zstd in its zlib)`);
  if (/gzip/.test(mediaType)) return 'gzip';
  if (/tar$/.test(mediaType) || mediaType === '') return 'none';
  throw new DnsnetError('invalid', `layer media type ${mediaType}: not a tar layer`);
}

/** What a layer's tar asks beyond files: whiteouts and opaque directories (paths relative to the layer). */
export interface Whiteouts {
  removed: string[];
  opaque: string[];
  /**
   * Symlinks with an absolute target (`etc/localtime -> /usr/share/zoneinfo/UTC`): made here, as they are.
   * node-tar would make them relative (it strips the leading /), which points them elsewhere in the image.
   */
  absoluteLinks: { path: string; target: string }[];
}

/** Sort a tar entry: a whiteout (recorded, not extracted) or a file (extracted). Pure. */
export function classifyEntry(entryPath: string, w: Whiteouts): boolean {
  const p = path.posix.normalize(entryPath.replace(/^\.?\/+/, ''));
  const base = path.posix.basename(p);
  const dir = path.posix.dirname(p);
  if (base.startsWith(WHITEOUT) && (p.startsWith('../') || p === '..' || path.posix.isAbsolute(p))) {
    throw new DnsnetError('invalid', `layer: a whiteout outside the layer: ${entryPath}`);
  }
  if (base === OPAQUE) {
    w.opaque.push(dir === '.' ? '' : dir);
    return false;
  }
  if (base.startsWith(WHITEOUT)) {
    w.removed.push(path.posix.join(dir === '.' ? '' : dir, base.slice(WHITEOUT.length)));
    return false;
  }
  return true;
}

/**
 * Extract `blob` into `dest` (made here; on failure removed), checking the uncompressed stream against
 * `diffId` (sha256 of the tar, from the image config). Returns the uncompressed size.
 */
export async function extractLayer(blob: string, mediaType: string, diffId: string | undefined, dest: string): Promise<number> {
  const declared = layerCompression(mediaType);
  const compression: Compression = isGzip(blob) ? 'gzip' : declared; // registries are not always exact
  fs.mkdirSync(dest, { recursive: true, mode: 0o755 });
  const hash = crypto.createHash('sha256');
  let size = 0;
  const whiteouts: Whiteouts = { removed: [], opaque: [], absoluteLinks: [] };
  try {
    const stages: (NodeJS.ReadableStream | NodeJS.WritableStream | Transform)[] = [fs.createReadStream(blob)];
    if (compression === 'gzip') stages.push(zlib.createGunzip());
    stages.push(
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      }),
    );
    const filter = (p: string, entry: { type?: string; linkpath?: string }) => {
      if (entry.type === 'SymbolicLink' && entry.linkpath?.startsWith('/')) {
        whiteouts.absoluteLinks.push({ path: path.posix.normalize(p.replace(/^\.?\/+/, '')), target: entry.linkpath });
        return false;
      }
      return classifyEntry(p, whiteouts);
    };
    stages.push(untar({ cwd: dest, preserveOwner: true, strict: false, filter: filter as (p: string) => boolean }) as unknown as NodeJS.WritableStream);
    await pipeline(stages as unknown as [Readable, ...NodeJS.WritableStream[]]);
    const got = `sha256:${hash.digest('hex')}`;
    if (diffId !== undefined && got !== diffId) throw new DnsnetError('invalid', `layer ${path.basename(blob)}: its content's digest is ${got}, the image config says ${diffId}`);
    for (const l of whiteouts.absoluteLinks) makeSymlink(dest, l.path, l.target);
    for (const dir of whiteouts.opaque) await setOpaque(dest, dir);
    for (const gone of whiteouts.removed) await makeWhiteout(dest, gone);
    return size;
  } catch (error) {
    fs.rmSync(dest, { recursive: true, force: true });
    if (error instanceof DnsnetError) throw error;
    throw new DnsnetError('invalid', `layer ${path.basename(blob)}: ${(error as Error).message}`, { cause: error });
  }
}

/** Whether `file` starts with gzip's magic bytes. */
export function isGzip(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(2);
    fs.readSync(fd, head, 0, 2, 0);
    return head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${err.trim() || `exit ${code}`}`))));
  });
}

/**
 * `rel`'s directory inside `root`, made where missing, one component at a time: a symlink on the way (a
 * layer's own `etc -> /`) is refused, so a whiteout can never touch anything outside the layer.
 */
function dirInside(root: string, rel: string): string {
  let at = root;
  for (const part of rel.split('/').filter((x) => x !== '' && x !== '.')) {
    if (part === '..') throw new DnsnetError('invalid', `layer: a whiteout outside the layer: ${rel}`);
    at = path.join(at, part);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(at);
    } catch {
      fs.mkdirSync(at, { mode: 0o755 });
      continue;
    }
    if (!st.isDirectory()) throw new DnsnetError('invalid', `layer: a whiteout under ${rel}, which is not a directory in the layer`);
  }
  return at;
}

async function setOpaque(root: string, rel: string): Promise<void> {
  await run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', dirInside(root, rel)]);
}

function makeSymlink(root: string, rel: string, target: string): void {
  if (rel.startsWith('../') || rel === '..' || path.posix.isAbsolute(rel)) throw new DnsnetError('invalid', `layer: a symlink outside the layer: ${rel}`);
  const file = path.join(dirInside(root, path.posix.dirname(rel)), path.posix.basename(rel));
  fs.rmSync(file, { recursive: true, force: true });
  fs.symlinkSync(target, file);
}

async function makeWhiteout(root: string, rel: string): Promise<void> {
  const file = path.join(dirInside(root, path.posix.dirname(rel)), path.posix.basename(rel));
  fs.rmSync(file, { recursive: true, force: true }); // a symlink is removed itself, never followed
  await run('mknod', [file, 'c', '0', '0']);
}
