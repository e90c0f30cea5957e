// `dnsnet pull`, `images`, `image inspect` and `rmi` through the real CLI and daemon, against a registry on
// a loopback address (test/helpers/registry.ts) serving images built here from Debian's busybox-static.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDnsnetEnv, expectRefused, leftovers, type DnsnetEnv } from '../helpers/dnsnet-env.js';
import { buildImage, buildIndex, busyboxLayer, startRegistry, type BuiltImage, type TestRegistry } from '../helpers/registry.js';

interface ImageInspect {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Architecture: string;
  Config: { Cmd?: string[]; Env?: string[] };
  RootFS: { Type: string; Layers: string[] };
}

let e: DnsnetEnv;
let reg: TestRegistry;
let base: BuiltImage;
const hostArch = process.arch === 'x64' ? 'amd64' : process.arch;
const loopback = () => `127.54.${crypto.randomInt(1, 255)}.${crypto.randomInt(1, 255)}`;

beforeEach(async () => {
  e = await createDnsnetEnv();
  reg = await startRegistry(loopback());
  base = await buildImage([busyboxLayer()], { Cmd: ['sh'], Env: ['PATH=/bin'] });
});

afterEach(async () => {
  await reg.close();
  await e.teardown();
  expect(await leftovers(e)).toEqual([]);
});

const imagesDir = () => path.join(e.env.DNSNET_ROOT!, 'images');
const list = (sub: string) => fs.readdirSync(path.join(imagesDir(), sub));
const inspectImage = async (ref: string) => (await e.json<ImageInspect[]>(['image', 'inspect', ref]))[0]!;

describe('pull', () => {
  it('by tag over plain HTTP when allowed: Docker output, images, image inspect; a second pull fetches nothing', async () => {
    reg.put('team/box', 'v1', base);
    const ref = `${reg.host}/team/box:v1`;
    const out = await e.ok(['pull', '--tls-verify=false', ref]);
    const lines = out.split('\n');
    expect(lines[0]).toBe(`v1: Pulling from ${reg.host}/team/box`);
    expect(lines).toContain(`Digest: ${base.manifestDigest}`);
    expect(lines).toContain(`Status: Downloaded newer image for ${ref}`);
    expect(lines.at(-1)).toBe(ref);
    const img = await inspectImage(ref);
    expect(img.Id).toBe(base.configDigest);
    expect(img.RepoTags).toEqual([ref]);
    expect(img.RepoDigests).toEqual([`${reg.host}/team/box@${base.manifestDigest}`]);
    expect(img.Architecture).toBe('amd64');
    expect(img.Config.Cmd).toEqual(['sh']);
    expect(img.RootFS.Type).toBe('layers');
    expect(img.RootFS.Layers).toHaveLength(1);
    const table = await e.ok(['images']);
    expect(table.split('\n')[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    expect(table).toMatch(new RegExp(`${reg.host.replace(/\./g, '\\.')}/team/box\\s+v1\\s+${base.configDigest.slice(7, 19)}\\s+.* ago\\s+[0-9.]+MB`));
    expect((await inspectImage(base.configDigest.slice(7, 19))).Id).toBe(base.configDigest); // by ID prefix
    // The layer is extracted: busybox and its applets.
    const layer = path.join(imagesDir(), 'layers', list('layers')[0]!);
    expect(fs.readlinkSync(path.join(layer, 'bin/sh'))).toBe('busybox');
    expect(fs.statSync(path.join(layer, 'bin/busybox')).mode & 0o111).not.toBe(0);

    const before = reg.requests.length;
    const again = await e.ok(['pull', '--tls-verify=false', ref]);
    expect(again).toContain(`Status: Image is up to date for ${ref}`);
    expect(reg.requests.slice(before).filter((p) => p.includes('/blobs/'))).toEqual([]);
  });

  it('shares layers between images, by digest tags nothing, follows Bearer tokens, and picks this platform from an index', async () => {
    const authReg = await startRegistry(loopback(), { auth: true });
    try {
      const app = await buildImage([busyboxLayer(), { 'app/run.sh': 'echo app\n' }], { Cmd: ['/app/run.sh'] });
      const other = await buildImage([busyboxLayer(), { 'etc/arch': 'arm64\n' }], { Cmd: ['sh'] }, { arch: 'arm64' });
      authReg.put('team/box', 'v1', base);
      authReg.put('team/app', undefined, app);
      authReg.put('team/app', undefined, other);
      authReg.putIndex('team/app', 'multi', buildIndex([{ image: other, arch: 'arm64' }, { image: app, arch: hostArch }]));
      e.env.DNSNET_INSECURE_REGISTRIES = authReg.host; // the daemon's list (it starts with this env)
      await e.ok(['pull', `${authReg.host}/team/box:v1`]);
      expect(authReg.requests).toContain('/token');
      const out = await e.ok(['pull', `${authReg.host}/team/app:multi`]);
      expect(out).toMatch(/: already exists$/m); // the busybox layer, shared
      expect(out).toMatch(/: pull complete$/m);
      expect(list('layers')).toHaveLength(2);
      const img = await inspectImage(`${authReg.host}/team/app:multi`);
      expect(img.Id).toBe(app.configDigest);
      expect(img.Config.Cmd).toEqual(['/app/run.sh']);
      // By digest: no tag, a repo digest.
      await e.ok(['pull', `${authReg.host}/team/app@${other.manifestDigest}`]);
      const byDigest = await inspectImage(`${authReg.host}/team/app@${other.manifestDigest}`);
      expect(byDigest.RepoTags).toEqual([]);
      expect(byDigest.RepoDigests).toEqual([`${authReg.host}/team/app@${other.manifestDigest}`]);
      expect(await e.ok(['images'])).toMatch(/<none>\s+<none>/);
    } finally {
      await authReg.close();
    }
  });

  it('refuses a digest mismatch, a plain-HTTP registry not allowed, zstd layers and bad references, leaving nothing', async () => {
    reg.put('team/box', 'v1', base);
    const layerDigest = [...base.blobs.keys()].find((d) => d !== base.configDigest)!;
    reg.corrupt(layerDigest);
    expectRefused(await e.cli(['pull', '--tls-verify=false', `${reg.host}/team/box:v1`]), new RegExp(`blob ${layerDigest}: digest mismatch`));
    expectRefused(await e.cli(['pull', `${reg.host}/team/box:v1`]), /--tls-verify=false, or DNSNET_INSECURE_REGISTRIES/);
    expectRefused(await e.cli(['pull', '--tls-verify=false', `${reg.host}/team/nothere:v1`]), /not found/);
    expectRefused(await e.cli(['pull', 'UPPER/case']), /invalid reference format "UPPER\/case"/);
    expectRefused(await e.cli(['pull', 'box@sha256:abc']), /invalid reference format/);
    const zstd = await buildImage([busyboxLayer()], {});
    const manifest = JSON.parse(zstd.manifest.toString()) as { layers: { mediaType: string }[] };
    manifest.layers[0]!.mediaType = 'application/vnd.oci.image.layer.v1.tar+zstd';
    const bytes = Buffer.from(JSON.stringify(manifest));
    reg.put('team/zstd', 'v1', { ...zstd, manifest: bytes, manifestDigest: `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}` });
    expectRefused(await e.cli(['pull', '--tls-verify=false', `${reg.host}/team/zstd:v1`]), /zstd layers cannot be read by Node/);
    expect(await e.ok(['images', '-q'])).toBe('');
    expect([...list('blobs/sha256'), ...list('layers'), ...list('records')]).toEqual([]);
  });
});

describe('rmi', () => {
  it('untags, deletes with the layers no other image has, and refuses an image of several tags by ID without -f', async () => {
    const app = await buildImage([busyboxLayer(), { 'app/x': 'x' }], {});
    reg.put('team/box', 'v1', base);
    reg.put('team/box', 'v2', base);
    reg.put('team/app', 'v1', app);
    for (const r of ['team/box:v1', 'team/box:v2', 'team/app:v1']) await e.ok(['pull', '--tls-verify=false', `${reg.host}/${r}`]);
    expect(list('layers')).toHaveLength(2);
    expectRefused(await e.cli(['rmi', base.configDigest.slice(7, 19)]), /unable to delete [0-9a-f]{12} \(must be forced\) - image is referenced in multiple repositories/);
    expect(await e.ok(['rmi', `${reg.host}/team/box:v2`])).toBe(`Untagged: ${reg.host}/team/box:v2`);
    const out = await e.ok(['rmi', `${reg.host}/team/box:v1`]);
    expect(out.split('\n')).toEqual([`Untagged: ${reg.host}/team/box:v1`, `Untagged: ${reg.host}/team/box@${base.manifestDigest}`, `Deleted: ${base.configDigest}`]);
    expect(list('layers')).toHaveLength(2); // the busybox layer is app's too
    await e.ok(['image', 'rm', `${reg.host}/team/app:v1`]);
    expect([...list('blobs/sha256'), ...list('layers'), ...list('records')]).toEqual([]);
    expectRefused(await e.cli(['rmi', 'nothere']), /no such image: nothere/);
    // The files of the images go with the state root; nothing of them is mounted anywhere.
    expect(String((await execa('cat', ['/proc/self/mountinfo'])).stdout)).not.toContain(imagesDir());
  });
});
