// `dnsnet pull`, `images`, `image inspect` and `rmi` through the real CLI and daemon, against a registry on
// a loopback address (test/helpers/registry.ts) serving images built here from Debian's busybox-static.
import crypto from 'node:crypto';
import fs from 'node:fs';
import zlib from 'node:zlib';
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
      expect(out).toMatch(/: Already exists$/m); // the busybox layer, shared
      expect(out).toMatch(/: Pull complete$/m);
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

describe('credentials', () => {
  it('come from a Docker-style config file ($DOCKER_CONFIG/config.json) for a private repository', async () => {
    const priv = await startRegistry(loopback(), { auth: true, basic: 'alice:s3cret' });
    try {
      priv.put('team/secret', 'v1', base);
      const ref = `${priv.host}/team/secret:v1`;
      const cfgDir = path.join(e.dir, 'docker-config');
      fs.mkdirSync(cfgDir);
      e.env.DNSNET_INSECURE_REGISTRIES = priv.host;
      e.env.DOCKER_CONFIG = cfgDir;
      fs.writeFileSync(path.join(cfgDir, 'config.json'), JSON.stringify({ auths: { [priv.host]: { auth: Buffer.from('alice:wrong').toString('base64') } } }));
      expectRefused(await e.cli(['pull', ref]), /token from .*: HTTP 401/);
      fs.writeFileSync(path.join(cfgDir, 'config.json'), JSON.stringify({ auths: { [priv.host]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
      expect(await e.ok(['pull', ref])).toContain(`Status: Downloaded newer image for ${ref}`);
    } finally {
      await priv.close();
    }
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

describe('image prune', () => {
  it('removes untagged images, with -a every image no container uses', async () => {
    const app = await buildImage([busyboxLayer(), { 'app/x': 'x\n' }], { Cmd: ['sleep', '1000'], Env: ['PATH=/bin'] });
    reg.put('team/box', 'v1', base);
    reg.put('team/app', undefined, app);
    const box = `${reg.host}/team/box:v1`;
    await e.ok(['pull', '--tls-verify=false', box]);
    await e.ok(['pull', '--tls-verify=false', `${reg.host}/team/app@${app.manifestDigest}`]);
    const out = await e.ok(['image', 'prune', '-f']);
    expect(out).toContain(`untagged: ${reg.host}/team/app@${app.manifestDigest}`);
    expect(out).toContain(`deleted: ${app.configDigest}`);
    expect(out).toMatch(/\n\nTotal reclaimed space: [0-9.]+k?B$/); // its own small layer: busybox's is still the tagged image's
    expect((await e.ok(['images', '-q'])).split('\n')).toEqual([base.configDigest.slice(7, 19)]);
    await e.ok(['run', '-d', '--name', 'user', box, 'sleep', '1000']);
    expect(await e.ok(['image', 'prune', '-a'])).toBe('Total reclaimed space: 0B'); // in use
    await e.ok(['rm', '-f', 'user']);
    expect(await e.ok(['image', 'prune', '-a'])).toContain(`deleted: ${base.configDigest}`);
    expect([...list('blobs/sha256'), ...list('layers'), ...list('records')]).toEqual([]);
  });
});

describe('save and load', () => {
  it('round-trips images through an OCI layout with Docker\'s manifest.json (files and pipes), and reads a Docker archive of the old layout', async () => {
    const app = await buildImage([busyboxLayer(), { 'app/x': 'x\n' }], { Cmd: ['cat', '/app/x'], Env: ['PATH=/bin'] });
    reg.put('team/box', 'v1', base);
    reg.put('team/app', 'v1', app);
    const [box, appRef] = [`${reg.host}/team/box:v1`, `${reg.host}/team/app:v1`];
    for (const r of [box, appRef]) await e.ok(['pull', '--tls-verify=false', r]);
    const tarFile = path.join(e.dir, 'images.tar');
    await e.ok(['save', '-o', tarFile, box, appRef]);
    const names = String((await execa('tar', ['-tf', tarFile])).stdout).split('\n');
    expect(names).toEqual(expect.arrayContaining(['oci-layout', 'index.json', 'manifest.json']));
    const docker = JSON.parse(String((await execa('tar', ['-xOf', tarFile, 'manifest.json'])).stdout)) as { RepoTags: string[] }[];
    expect(docker.map((m) => m.RepoTags)).toEqual([[box], [appRef]]);
    await e.ok(['rmi', box, appRef]);
    expect(await e.ok(['images', '-q'])).toBe('');
    expect((await e.ok(['load', '-i', tarFile])).split('\n').sort()).toEqual([`Loaded image: ${appRef}`, `Loaded image: ${box}`].sort());
    expect((await inspectImage(appRef)).Id).toBe(app.configDigest);
    expect(await e.ok(['run', '--rm', appRef])).toBe('x');
    // Through pipes, as `docker save IMG > f` and `docker load < f`.
    const cli = (await import('../helpers/dnsnet-env.js')).CLI;
    const env = { ...process.env, ...e.env };
    const piped = path.join(e.dir, 'piped.tar');
    await execa('sh', ['-c', `"${process.execPath}" "${cli}" save ${box} > "${piped}"`], { env });
    await e.ok(['rmi', box]);
    const viaStdin = await execa('sh', ['-c', `"${process.execPath}" "${cli}" load < "${piped}"`], { env });
    expect(viaStdin.stdout).toBe(`Loaded image: ${box}`);

    // Docker's older archive: <id>/layer.tar (uncompressed), <config>.json, manifest.json.
    const old = await buildImage([busyboxLayer(), { 'etc/motd': 'old style\n' }], { Cmd: ['cat', '/etc/motd'], Env: ['PATH=/bin'] });
    const dir = fs.mkdtempSync(path.join(e.dir, 'old-'));
    const layers = [...old.blobs.keys()].filter((d) => d !== old.configDigest);
    const layerPaths = layers.map((d, i) => {
      fs.mkdirSync(path.join(dir, `l${i}`));
      fs.writeFileSync(path.join(dir, `l${i}`, 'layer.tar'), zlib.gunzipSync(old.blobs.get(d)!));
      return `l${i}/layer.tar`;
    });
    fs.writeFileSync(path.join(dir, `${old.configDigest.slice(7)}.json`), old.config);
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify([{ Config: `${old.configDigest.slice(7)}.json`, RepoTags: ['old/style:v1'], Layers: layerPaths }]));
    const oldTar = path.join(e.dir, 'old.tar');
    await execa('tar', ['-cf', oldTar, '-C', dir, '.']);
    expect(await e.ok(['load', '-i', oldTar])).toBe('Loaded image: old/style:v1');
    expect(await e.ok(['run', '--rm', 'old/style:v1'])).toBe('old style');
    expectRefused(await e.cli(['load', '-i', path.join(e.dir, 'host-resolv.conf')]), /not a tar of images|neither an OCI image layout/);
  });
});
