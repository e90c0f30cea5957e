// `dnsnet run IMAGE`: images built here from Debian's busybox-static, pulled from a loopback registry, run
// on an overlay of their layers: names between image containers (busybox's resolver, a third stub after
// glibc and musl), the image's config as Docker applies it, whiteouts, /proc /dev /sys, the writable layer,
// rmi of an image in use, and nothing left behind.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDnsnetEnv, expectRefused, leftovers, type DnsnetEnv } from '../helpers/dnsnet-env.js';
import { buildImage, busyboxLayer, startRegistry, type TestRegistry } from '../helpers/registry.js';

let e: DnsnetEnv;
let reg: TestRegistry;
let box: string;
let cfg: string;
let wh: string;

beforeEach(async () => {
  e = await createDnsnetEnv();
  reg = await startRegistry(`127.54.${crypto.randomInt(1, 255)}.${crypto.randomInt(1, 255)}`);
  e.env.DNSNET_INSECURE_REGISTRIES = reg.host;
  const bb = busyboxLayer();
  reg.put('t/box', 'v1', await buildImage([{ ...bb, 'www/index.html': 'hello from the image\n' }], { Cmd: ['sh'], Env: ['PATH=/bin'] }));
  reg.put(
    't/cfg',
    'v1',
    await buildImage([bb, { 'srv/app/README': 'app\n' }], {
      Entrypoint: ['/bin/echo', 'entry'],
      Cmd: ['default'],
      Env: ['PATH=/bin', 'FOO=from-image', 'BAR=keep'],
      WorkingDir: '/srv/app',
      User: 'app',
      ExposedPorts: { '8080/tcp': {} },
    }),
  );
  reg.put('t/wh', 'v1', await buildImage([{ ...bb, 'opt/a': 'a\n', 'opt/dir/x': 'x\n', 'etc/old': 'old\n' }, { 'etc/.wh.old': '', 'opt/dir/.wh..wh..opq': '', 'opt/dir/y': 'y\n' }], { Cmd: ['sh'], Env: ['PATH=/bin'] }));
  [box, cfg, wh] = [`${reg.host}/t/box:v1`, `${reg.host}/t/cfg:v1`, `${reg.host}/t/wh:v1`];
  for (const r of [box, cfg, wh]) await e.ok(['pull', r]);
});

afterEach(async () => {
  await reg.close();
  await e.teardown();
  expect(await leftovers(e)).toEqual([]);
  expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(e.dir); // no overlay of ours left mounted
});

const run = async (args: string[]) => (await e.ok(['run', '--rm', ...args])).trim();

describe('run IMAGE', () => {
  it('two image containers on a user network reach each other by name: ping, nslookup, wget (busybox)', async () => {
    await e.ok(['network', 'create', 'app']);
    await e.ok(['run', '-d', '--name', 'web', '--network', 'app', box, 'httpd', '-f', '-p', '80', '-h', '/www']);
    const ip = (await e.json<{ NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }[]>(['inspect', 'web']))[0]!.NetworkSettings.Networks.app!.IPAddress;
    expect(await run(['--network', 'app', box, 'ping', '-c1', '-W2', 'web'])).toContain(`${ip}`);
    const ns = await run(['--network', 'app', box, 'nslookup', 'web']);
    expect(ns).toContain('127.0.0.11');
    expect(ns).toContain(ip);
    await expect.poll(() => e.cli(['run', '--rm', '--network', 'app', box, 'wget', '-q', '-O-', 'http://web/']).then((r) => String(r.stdout)), { timeout: 10_000 }).toBe('hello from the image');
  });

  it("applies the image's Entrypoint, Cmd, Env, WorkingDir and User as Docker does; flags override them", async () => {
    expect(await run([cfg])).toBe('entry default');
    expect(await run([cfg, 'x', 'y'])).toBe('entry x y');
    const probe = ['-c', 'id -u; id -g; pwd; echo "$FOO $BAR $HOME"'];
    expect((await run(['--entrypoint', '/bin/sh', cfg, ...probe])).split('\n')).toEqual(['1000', '1000', '/srv/app', 'from-image keep /home/app']);
    expect((await run(['--entrypoint', '/bin/sh', '-e', 'FOO=cli', '-u', '0', '-w', '/tmp', cfg, ...probe])).split('\n')).toEqual(['0', '0', '/tmp', 'cli keep /root']);
    expect((await run(['--entrypoint', '/bin/sh', '-u', 'nobody', cfg, ...probe])).split('\n').slice(0, 2)).toEqual(['65534', '65534']);
    expect((await run(['--entrypoint', '/bin/sh', '-u', '1234:5', cfg, ...probe])).split('\n').slice(0, 2)).toEqual(['1234', '5']);
    expectRefused(await e.cli(['run', '--rm', '-u', 'ghost', cfg]), /unable to find user ghost/);
    // A working directory the image lacks is made, as Docker does.
    expect(await run(['-w', '/new/dir', box, 'pwd'])).toBe('/new/dir');
    // ExposedPorts feed -P.
    await e.ok(['run', '-d', '--name', 'pub', '-P', '--entrypoint', '/bin/sleep', cfg, '1000']);
    expect(await e.ok(['port', 'pub', '8080'])).toMatch(/^0\.0\.0\.0:\d+/);
    // The inspect shape.
    const c = (await e.json<{ Image: string; Path: string; Args: string[]; Config: { Image: string; User: string; WorkingDir: string } }[]>(['inspect', 'pub']))[0]!;
    expect(c.Config.Image).toBe(cfg);
    expect(c.Image).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect([c.Path, ...c.Args]).toEqual(['/bin/sleep', '1000']);
    expect(c.Config.User).toBe('app');
    expect(c.Config.WorkingDir).toBe('/srv/app');
    // exec runs as the image's user.
    expect((await e.ok(['exec', 'pub', 'id', '-u'])).trim()).toBe('1000');
  });

  it('honours whiteouts and opaque directories; has its own /etc files, /proc, /dev and /sys', async () => {
    const out = await run([wh, 'sh', '-c', 'ls /etc/old 2>&1; ls /opt/dir; cat /opt/a']);
    expect(out.split('\n')).toEqual(['ls: /etc/old: No such file or directory', 'y', 'a']);
    const hosts = await run([box, 'cat', '/etc/hosts', '/etc/hostname', '/etc/resolv.conf']);
    expect(hosts).toContain('127.0.0.1\tlocalhost'); // the image has none: dnsnet's are mounted in
    expect(hosts).toMatch(/^nameserver /m);
    const sys = await run(['--network', 'none', box, 'sh', '-c', 'ls /sys/class/net; test -c /dev/null && echo devnull; test -c /dev/urandom && echo urandom; head -c 4 /dev/zero | wc -c; stat -c %i /proc/self/ns/net']);
    const lines = sys.split('\n');
    expect(lines.slice(0, 3)).toEqual(['lo', 'devnull', 'urandom']);
    expect(lines[3]?.trim()).toBe('4');
  });

  it('keeps its writable layer across stop and start, removes it with the container; rmi of an image in use is refused', async () => {
    await e.ok(['run', '-d', '--name', 'keeper', box, 'sh', '-c', 'echo data > /data; sleep 1000']);
    await expect.poll(() => e.cli(['exec', 'keeper', 'cat', '/data']).then((r) => String(r.stdout).trim()), { timeout: 5000 }).toBe('data');
    const id = (await e.json<{ Id: string }[]>(['inspect', 'keeper']))[0]!.Id;
    await e.ok(['stop', '-t', '0', 'keeper']);
    expectRefused(await e.cli(['rmi', box]), /conflict: unable to remove repository reference ".*" \(must force\) - container [0-9a-f]{12} is using its referenced image/);
    await e.ok(['start', 'keeper']);
    expect((await e.ok(['exec', 'keeper', 'cat', '/data'])).trim()).toBe('data');
    // An exec right after start waits for the container's own root (its init mounts it after start answered).
    for (let i = 0; i < 5; i++) {
      await e.ok(['stop', '-t', '0', 'keeper']);
      await e.ok(['start', 'keeper']);
      expect((await e.ok(['exec', 'keeper', 'cat', '/data'])).trim()).toBe('data');
    }
    const ps = (await e.ok(['ps'])).split('\n');
    expect(ps[0]).toMatch(/^CONTAINER ID\s+IMAGE\s+COMMAND/);
    expect(ps.find((l) => l.endsWith('keeper'))?.split(/\s{3,}/)[1]).toBe(box);
    // The image's files are untouched: the change is in the container's own layer.
    expect(String((await e.cli(['run', '--rm', box, 'cat', '/data'])).exitCode)).not.toBe('0');
    await e.ok(['rm', '-f', 'keeper']);
    expect(fs.existsSync(path.join(e.env.DNSNET_ROOT!, 'containers', id))).toBe(false);
    await e.ok(['rmi', box]);
  });
});
