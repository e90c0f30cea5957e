import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rewriteIfUnedited, sha256, writeInPlace } from '../../src/resolvconf/writer.js';

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dnsnet-writer-'));
  file = join(dir, 'resolv.conf');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('sha256', () => {
  it('is the hex SHA-256 of the UTF-8 bytes', () => {
    expect(sha256('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256('é')).toBe(sha256(Buffer.from('é', 'utf8')));
  });
});

describe('writeInPlace', () => {
  it('creates a missing file with mode 0644', async () => {
    const hash = await writeInPlace(file, 'one\n');
    expect(await readFile(file, 'utf8')).toBe('one\n');
    expect(hash).toBe(sha256('one\n'));
    expect((await stat(file)).mode & 0o777).toBe(0o644);
  });

  it.each([
    ['shorter', 'a much longer first version\n', 'short\n'],
    ['longer', 'short\n', 'a much longer second version\n'],
    ['empty', 'something\n', ''],
  ])('rewrites %s content keeping the inode', async (_name, before, after) => {
    await writeFile(file, before);
    const ino = (await stat(file)).ino;
    const hash = await writeInPlace(file, after);
    expect(await readFile(file, 'utf8')).toBe(after);
    expect(hash).toBe(sha256(after));
    expect((await stat(file)).ino).toBe(ino);
  });
});

describe('rewriteIfUnedited', () => {
  it('writes when dnsnet wrote the current content, keeping the inode', async () => {
    const h1 = await writeInPlace(file, 'v1\n');
    const ino = (await stat(file)).ino;
    const r = await rewriteIfUnedited(file, 'v2\n', h1);
    expect(r).toEqual({ written: true, hash: sha256('v2\n'), edited: false });
    expect(await readFile(file, 'utf8')).toBe('v2\n');
    expect((await stat(file)).ino).toBe(ino);
  });

  it('leaves an edited file alone', async () => {
    const h1 = await writeInPlace(file, 'v1\n');
    await writeFile(file, 'nameserver 1.1.1.1 # mine\n');
    const r = await rewriteIfUnedited(file, 'v2\n', h1);
    expect(r).toEqual({ written: false, hash: h1, edited: true });
    expect(await readFile(file, 'utf8')).toBe('nameserver 1.1.1.1 # mine\n');
  });

  it('does not write the same content again', async () => {
    const h1 = await writeInPlace(file, 'v1\n');
    const before = (await stat(file)).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    expect(await rewriteIfUnedited(file, 'v1\n', h1)).toEqual({ written: false, hash: h1, edited: false });
    expect((await stat(file)).mtimeMs).toBe(before);
  });

  it('treats a file already holding the new text as unedited (crash before the hash was saved)', async () => {
    const h0 = sha256('v0\n');
    await writeInPlace(file, 'v1\n');
    expect(await rewriteIfUnedited(file, 'v1\n', h0)).toEqual({ written: false, hash: sha256('v1\n'), edited: false });
  });

  it('writes when nothing was recorded yet', async () => {
    expect(await rewriteIfUnedited(file, 'v1\n', undefined)).toEqual({ written: true, hash: sha256('v1\n'), edited: false });
    await writeFile(file, 'stale\n');
    expect(await rewriteIfUnedited(file, 'v2\n', undefined)).toEqual({ written: true, hash: sha256('v2\n'), edited: false });
    expect(await readFile(file, 'utf8')).toBe('v2\n');
  });

  it('treats a removed file as edited and does not recreate it', async () => {
    const h1 = await writeInPlace(file, 'v1\n');
    await rm(file);
    expect(await rewriteIfUnedited(file, 'v2\n', h1)).toEqual({ written: false, hash: h1, edited: true });
    await expect(stat(file)).rejects.toThrow();
  });
});
