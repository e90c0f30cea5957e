// A layer's whiteouts become overlayfs's own when it is extracted (mknod 0/0, trusted.overlay.opaque: root).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execa } from 'execa';
import { c as tarCreate } from 'tar';
import { afterEach, describe, expect, it } from 'vitest';
import { extractLayer } from '../../src/images/layers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function layerBlob(files: Record<string, string>): Promise<{ blob: string; diffId: string }> {
  const src = fs.mkdtempSync(path.join(os.tmpdir(), 'dnt-wh-src-'));
  dirs.push(src);
  for (const [p, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, p)), { recursive: true });
    fs.writeFileSync(path.join(src, p), content);
  }
  const chunks: Buffer[] = [];
  for await (const c of tarCreate({ cwd: src, portable: true }, fs.readdirSync(src)) as AsyncIterable<Buffer>) chunks.push(c);
  const tar = Buffer.concat(chunks);
  const blob = path.join(src, '..', `dnt-wh-${crypto.randomBytes(4).toString('hex')}.tar.gz`);
  fs.writeFileSync(blob, zlib.gzipSync(tar));
  dirs.push(blob);
  return { blob, diffId: `sha256:${crypto.createHash('sha256').update(tar).digest('hex')}` };
}

describe('extractLayer', () => {
  it('turns .wh.NAME into a 0/0 character device and .wh..wh..opq into an opaque directory', async () => {
    const { blob, diffId } = await layerBlob({ 'etc/.wh.old.conf': '', 'opt/dir/.wh..wh..opq': '', 'opt/dir/new': 'new\n', 'etc/kept': 'kept\n' });
    const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'dnt-wh-dest-'));
    dirs.push(dest);
    await extractLayer(blob, 'application/vnd.oci.image.layer.v1.tar+gzip', diffId, path.join(dest, 'l'));
    const gone = fs.statSync(path.join(dest, 'l/etc/old.conf'));
    expect(gone.isCharacterDevice()).toBe(true);
    expect(gone.rdev).toBe(0);
    expect(fs.existsSync(path.join(dest, 'l/etc/.wh.old.conf'))).toBe(false);
    expect(fs.existsSync(path.join(dest, 'l/opt/dir/.wh..wh..opq'))).toBe(false);
    const attr = await execa('getfattr', ['-n', 'trusted.overlay.opaque', '--only-values', path.join(dest, 'l/opt/dir')]);
    expect(attr.stdout).toBe('y');
    expect(fs.readFileSync(path.join(dest, 'l/etc/kept'), 'utf8')).toBe('kept\n');
  });

  it('refuses content whose digest is not the diff_id, and leaves no directory', async () => {
    const { blob } = await layerBlob({ a: 'a' });
    const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'dnt-wh-dest-'));
    dirs.push(dest);
    await expect(extractLayer(blob, 'application/vnd.oci.image.layer.v1.tar+gzip', `sha256:${'0'.repeat(64)}`, path.join(dest, 'l'))).rejects.toThrow(/the image config says sha256:0{64}/);
    expect(fs.existsSync(path.join(dest, 'l'))).toBe(false);
  });
});

describe('extractLayer and symlinks', () => {
  it('keeps absolute symlink targets as they are (node-tar alone would make them relative)', async () => {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), 'dnt-wh-src-'));
    dirs.push(src);
    fs.mkdirSync(path.join(src, 'etc'));
    fs.symlinkSync('/usr/share/zoneinfo/UTC', path.join(src, 'etc', 'localtime'));
    fs.symlinkSync('../bin/busybox', path.join(src, 'etc', 'rel'));
    const chunks: Buffer[] = [];
    for await (const c of tarCreate({ cwd: src, portable: true }, ['etc']) as AsyncIterable<Buffer>) chunks.push(c);
    const blob = path.join(src, '..', `dnt-wh-${crypto.randomBytes(4).toString('hex')}.tar`);
    fs.writeFileSync(blob, Buffer.concat(chunks));
    dirs.push(blob);
    const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'dnt-wh-dest-'));
    dirs.push(dest);
    await extractLayer(blob, 'application/vnd.oci.image.layer.v1.tar', undefined, path.join(dest, 'l'));
    expect(fs.readlinkSync(path.join(dest, 'l/etc/localtime'))).toBe('/usr/share/zoneinfo/UTC');
    expect(fs.readlinkSync(path.join(dest, 'l/etc/rel'))).toBe('../bin/busybox');
  });

  it('never lets a whiteout reach through a symlink of the layer to the host', async () => {
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'dnt-wh-outside-'));
    dirs.push(outside);
    fs.writeFileSync(path.join(outside, 'precious'), 'keep\n');
    // A layer whose `evil` is a symlink to a host directory, and a whiteout under it.
    const src = fs.mkdtempSync(path.join(os.tmpdir(), 'dnt-wh-src-'));
    dirs.push(src);
    fs.symlinkSync(outside, path.join(src, 'evil'));
    const chunks: Buffer[] = [];
    for await (const c of tarCreate({ cwd: src, portable: true }, ['evil']) as AsyncIterable<Buffer>) chunks.push(c);
    // Append an entry evil/.wh.precious by hand: a second tar of a real directory named evil.
    const src2 = fs.mkdtempSync(path.join(os.tmpdir(), 'dnt-wh-src2-'));
    dirs.push(src2);
    fs.mkdirSync(path.join(src2, 'evil'));
    fs.writeFileSync(path.join(src2, 'evil', '.wh.precious'), '');
    const chunks2: Buffer[] = [];
    for await (const c of tarCreate({ cwd: src2, portable: true }, ['evil/.wh.precious']) as AsyncIterable<Buffer>) chunks2.push(c);
    const first = Buffer.concat(chunks);
    const tar = Buffer.concat([first.subarray(0, first.length - 1024), Buffer.concat(chunks2)]); // drop the first tar's end blocks
    const blob = path.join(src, '..', `dnt-wh-${crypto.randomBytes(4).toString('hex')}.tar.gz`);
    fs.writeFileSync(blob, zlib.gzipSync(tar));
    dirs.push(blob);
    const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'dnt-wh-dest-'));
    dirs.push(dest);
    await expect(extractLayer(blob, 'application/vnd.oci.image.layer.v1.tar+gzip', undefined, path.join(dest, 'l'))).rejects.toThrow(/not a directory in the layer/);
    expect(fs.readFileSync(path.join(outside, 'precious'), 'utf8')).toBe('keep\n');
  });
});
