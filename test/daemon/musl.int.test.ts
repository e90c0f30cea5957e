// musl's stub resolver (a static binary built here with musl-gcc) resolves container names and
// forwarded names through 127.0.0.11, and sees a host resolv.conf change on its next lookup.
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createDnsnetEnv, leftovers, type DnsnetEnv } from '../helpers/dnsnet-env.js';
import { randomLoopback, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';

const SOURCE = fileURLToPath(new URL('../../fixtures/clients/resolve.c', import.meta.url));
let e: DnsnetEnv;
let up: FakeUpstream;
let bin: string;

beforeEach(async () => {
  up = await startFakeUpstream(randomLoopback(), { 'far.example.test': '192.0.2.77' });
  e = await createDnsnetEnv(`nameserver ${up.ip}\n`);
  bin = path.join(e.dir, 'resolve-musl');
  await execa('musl-gcc', ['-static', '-O2', '-o', bin, SOURCE]);
});

afterEach(async () => {
  await e.teardown();
  await up.close();
  expect(await leftovers(e)).toEqual([]);
});

it('a static musl client resolves names, aliases and forwarded names', async () => {
  expect(fs.readFileSync(bin).includes(Buffer.from('GLIBC'))).toBe(false);
  await e.ok(['network', 'create', 'app']);
  await e.ok(['run', '-d', '--name', 'target', '--network', 'app', '--network-alias', 'tgt', 'sleep', 'infinity']);
  await e.ok(['run', '-d', '--name', 'muslc', '--network', 'app', 'sleep', 'infinity']);
  const [t] = await e.json<{ NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[]>(['inspect', 'target']);
  const ip = t!.NetworkSettings.Networks.app!.IPAddress;
  expect((await e.ok(['exec', 'muslc', bin, 'target'])).trim()).toBe(ip);
  expect((await e.ok(['exec', 'muslc', bin, 'tgt.app'])).trim()).toBe(ip);
  expect((await e.ok(['exec', 'muslc', bin, 'far.example.test'])).trim()).toBe('192.0.2.77');
  const missing = await e.cli(['exec', 'muslc', bin, 'nothing.example.test']);
  expect(missing.exitCode).toBe(2);
});

it('--rootfs runs the command inside that root, with the generated /etc files mounted there', async () => {
  const root = path.join(e.dir, 'rootfs');
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(root, 'bin'));
  for (const f of ['hosts', 'hostname', 'resolv.conf']) fs.writeFileSync(path.join(root, 'etc', f), 'placeholder\n');
  fs.copyFileSync(bin, path.join(root, 'bin', 'resolve'));
  fs.chmodSync(path.join(root, 'bin', 'resolve'), 0o755);
  await e.ok(['network', 'create', 'app']);
  await e.ok(['run', '-d', '--name', 'target', '--network', 'app', 'sleep', 'infinity']);
  const [t] = await e.json<{ NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[]>(['inspect', 'target']);
  const r = await e.cli(['run', '--rm', '--network', 'app', '--rootfs', root, '-w', '/etc', '/bin/resolve', 'target']);
  expect(r.exitCode).toBe(0);
  expect(String(r.stdout).trim()).toBe(t!.NetworkSettings.Networks.app!.IPAddress);
  // Outside the container the rootfs files are untouched (the mounts were private to it).
  expect(fs.readFileSync(path.join(root, 'etc', 'resolv.conf'), 'utf8')).toBe('placeholder\n');
  expect((await e.cli(['run', '--rm', '--rootfs', root, '/bin/nothing'])).exitCode).toBe(127);
  const bad = await e.cli(['run', '--rm', '--rootfs', path.join(e.dir, 'missing'), '/bin/resolve', 'x']);
  expect(bad.exitCode).toBe(125);
});
