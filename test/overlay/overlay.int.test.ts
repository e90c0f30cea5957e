// Overlay networks across hosts (issue 18), end to end: three hosts on one machine (test/helpers/multihost.ts:
// each a netns with its own dnsnet daemon, an underlay bridge, a real 3-member etcd), the real CLI. Names
// across hosts (name, alias, short ID, name.network, PTR) through each container's 127.0.0.11, L2 reach over
// VXLAN, the MTU, the way out through the container's own host; 60 concurrent runs on three hosts with no
// address twice; isolation of two overlay networks; `network rm` refused while any host uses it; an etcd
// member down; a daemon killed with -9; a host cut off from the store (fenced, refusing runs, re-claiming on
// return, a taken address replaced); a host killed (its names gone within the TTL, its addresses free).
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsName } from '../../src/state/kernel-names.js';
import { createMultiHost, HAVE_ETCD, type Host, type MultiHost } from '../helpers/multihost.js';
import { CLI, createDnsnetEnv, leftovers } from '../helpers/dnsnet-env.js';

const TTL = 3;

async function run(h: Host, args: string[]): Promise<string> {
  return (await h.env.ok(['run', '-d', ...args, '--', 'sleep', 'infinity'])).trim();
}

interface Inspected {
  Id: string;
  Name: string;
  NetworkSettings: { Networks: Record<string, { IPAddress: string; MacAddress: string }> };
}

async function inspect(h: Host, ref: string): Promise<Inspected> {
  return (await h.env.json<Inspected[]>(['inspect', ref]))[0]!;
}

async function ipOf(h: Host, ref: string, net: string): Promise<string> {
  return (await inspect(h, ref)).NetworkSettings.Networks[net]?.IPAddress ?? '';
}

/** `dig +short` through the embedded resolver of container `id` (its netns). */
async function dig(id: string, args: string[]): Promise<string> {
  const r = await execa('nsenter', [`--net=/run/netns/${netnsName(id)}`, '--', 'dig', '+short', '+time=1', '+tries=1', '@127.0.0.11', ...args], { reject: false, timeout: 10_000 });
  return String(r.stdout).trim();
}

/** A command in container `id`'s netns. */
async function inCtr(id: string, cmd: string[]): Promise<{ exitCode: number | undefined; stdout: string; stderr: string }> {
  const r = await execa('nsenter', [`--net=/run/netns/${netnsName(id)}`, '--', ...cmd], { reject: false, timeout: 20_000 });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Poll `ok` every 100 ms for up to `ms`: the time it took. */
async function until(ok: () => Promise<boolean>, ms: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - t0;
}

describe.skipIf(!HAVE_ETCD)('overlay networks across three hosts', () => {
  let mh: MultiHost;
  let torn = false;
  const host = (i: number): Host => mh.hosts[i]!;

  beforeAll(async () => {
    mh = await createMultiHost(3, { ttl: TTL });
    await host(0).env.ok(['network', 'create', '-d', 'overlay', '--attachable', 'ov']);
  }, 120_000);
  afterAll(async () => {
    if (!torn) await mh?.teardown();
  }, 120_000);

  it('a network made on one host is listed on every host, scope global; what overlay cannot do is refused', async () => {
    for (const h of mh.hosts) {
      await until(async () => (await h.env.ok(['network', 'ls'])).includes('ov '), 5000, `ov on host ${h.index}`);
      expect(await h.env.ok(['network', 'ls'])).toMatch(/\bov\s+overlay\s+global\b/);
      const [net] = await h.env.json<{ Scope: string; Driver: string; Attachable: boolean; IPAM: { Config: { Subnet: string }[] }; Options: Record<string, string> }[]>(['network', 'inspect', 'ov']);
      expect(net).toMatchObject({ Scope: 'global', Driver: 'overlay', Attachable: true, IPAM: { Config: [{ Subnet: '10.0.0.0/24' }] } });
      expect(Number(net!.Options['com.docker.network.driver.overlay.vxlanid_list'])).toBeGreaterThanOrEqual(4096);
    }
    const dup = await host(1).env.cli(['network', 'create', '-d', 'overlay', 'ov']);
    expect(dup.exitCode).toBe(125);
    expect(String(dup.stderr)).toMatch(/already exists/);
    const v6 = await host(1).env.cli(['network', 'create', '-d', 'overlay', '--ipv6', 'ov6']);
    expect(v6.exitCode).toBe(125);
    expect(String(v6.stderr)).toMatch(/IPv4 only/);
    // A subnet of the creating host (here its underlay) is refused: it would cut the host off.
    const underlay = `${host(1).ip.split('.').slice(0, 3).join('.')}.0/24`;
    const clash = await host(1).env.cli(['network', 'create', '-d', 'overlay', '--subnet', underlay, 'ovc']);
    expect(clash.exitCode).toBe(125);
    expect(String(clash.stderr)).toMatch(new RegExp(`subnet ${underlay.replace(/\./g, '\\.')} overlaps .*a network of this host`));
    // Nothing was made by the refusals.
    expect(await host(2).env.ok(['network', 'ls'])).not.toMatch(/\bov6\b|\bovc\b/);
  });

  it('names across hosts both ways: name, alias, short ID, name.network, PTR; L2 reach, MTU 1450, out through its own host', async () => {
    const web = await run(host(0), ['--name', 'web', '--network', 'ov', '--network-alias', 'www']);
    const cli = await run(host(1), ['--name', 'cli', '--network', 'ov']);
    const webIp = await ipOf(host(0), 'web', 'ov');
    const cliIp = await ipOf(host(1), 'cli', 'ov');
    expect(webIp).toMatch(/^10\.0\.0\.\d+$/);
    expect(cliIp).not.toBe(webIp);
    await until(async () => (await dig(cli, ['web'])) === webIp, 5000, 'web from host 2');
    for (const name of ['www', web.slice(0, 12), 'web.ov', 'www.ov']) expect(await dig(cli, [name])).toBe(webIp);
    expect(await dig(cli, ['-x', webIp])).toBe('web.ov.');
    // The other way.
    await until(async () => (await dig(web, ['cli'])) === cliIp, 5000, 'cli from host 1');
    expect(await dig(web, ['-x', cliIp])).toBe('cli.ov.');
    // L2 over VXLAN, at the overlay's MTU: 1422 bytes of ICMP payload + 28 = 1450 pass unfragmented, 1423 do not.
    expect((await inCtr(cli, ['ip', '-o', 'link', 'show', 'eth0'])).stdout).toMatch(/mtu 1450/);
    expect((await inCtr(cli, ['ping', '-c1', '-W2', '-M', 'do', '-s', '1422', webIp])).exitCode).toBe(0);
    expect((await inCtr(cli, ['ping', '-c1', '-W2', '-M', 'do', '-s', '1423', webIp])).exitCode).not.toBe(0);
    // The way out: through its own host (the gateway is that host's bridge), NATed to the host's address.
    const route = (await inCtr(cli, ['ip', 'route', 'show', 'default'])).stdout;
    expect(route).toMatch(/default via 10\.0\.0\.1 dev eth0/);
    expect((await inCtr(cli, ['ping', '-c1', '-W2', host(2).ip])).exitCode).toBe(0);
    // The host's VXLAN device knows the remote container statically (no learning).
    const dev = `vx-${(await host(1).env.json<{ Id: string }[]>(['network', 'inspect', 'ov']))[0]!.Id.slice(0, 12)}`;
    expect((await host(1).sh(['bridge', 'fdb', 'show', 'dev', dev])).stdout).toContain(`dst ${host(0).ip}`);
    expect((await host(1).sh(['ip', '-d', 'link', 'show', dev])).stdout).toMatch(/nolearning/);
    await host(0).env.ok(['rm', '-f', 'web']);
    await until(async () => (await dig(cli, ['web'])) === '', 5000, 'web gone from host 2');
    await host(1).env.ok(['rm', '-f', 'cli']);
  });

  it('3 hosts x 20 concurrent runs on one network: no address twice, every name answers on another host', async () => {
    const names = mh.hosts.map((h) => Array.from({ length: 20 }, (_, i) => `h${h.index}c${i}`));
    await Promise.all(mh.hosts.flatMap((h) => names[h.index]!.map((n) => run(h, ['--name', n, '--network', 'ov']))));
    const ips = new Map<string, string>();
    for (const h of mh.hosts) for (const n of names[h.index]!) ips.set(n, await ipOf(h, n, 'ov'));
    expect(new Set(ips.values()).size).toBe(60);
    const probe = await run(host(0), ['--name', 'probe', '--network', 'ov']);
    const remote = [...names[1]!, ...names[2]!];
    await until(async () => (await dig(probe, remote)).split('\n').filter(Boolean).length === remote.length, 10_000, 'all 40 remote names');
    expect((await dig(probe, remote)).split('\n')).toEqual(remote.map((n) => ips.get(n)));
    for (const h of mh.hosts) await h.env.ok(['rm', '-f', ...names[h.index]!]);
    await host(0).env.ok(['rm', '-f', 'probe']);
  }, 120_000);

  it('two overlay networks are isolated: no names, no traffic between them, on one host or across; connect, disconnect, stop and start', async () => {
    await host(1).env.ok(['network', 'create', '-d', 'overlay', 'ov2']);
    await until(async () => (await host(0).env.ok(['network', 'ls'])).includes('ov2'), 5000, 'ov2 on host 1');
    const a1 = await run(host(0), ['--name', 'a1', '--network', 'ov']);
    const b1 = await run(host(1), ['--name', 'b1', '--network', 'ov']);
    await run(host(0), ['--name', 'a2', '--network', 'ov2']);
    const b2 = await run(host(1), ['--name', 'b2', '--network', 'ov2']);
    const b1Ip = await ipOf(host(1), 'b1', 'ov');
    const a2Ip = await ipOf(host(0), 'a2', 'ov2');
    const b2Ip = await ipOf(host(1), 'b2', 'ov2');
    expect(b2Ip.split('.').slice(0, 3).join('.')).not.toBe(b1Ip.split('.').slice(0, 3).join('.'));
    await until(async () => (await dig(a1, ['b1'])) === b1Ip, 5000, 'b1 from a1');
    await until(async () => (await dig(b2, ['a2'])) === a2Ip, 5000, 'a2 from b2');
    expect(await dig(a1, ['b2'])).toBe('');
    expect(await dig(a1, ['a2'])).toBe('');
    expect((await inCtr(a1, ['ping', '-c1', '-W1', a2Ip])).exitCode).not.toBe(0); // another overlay on the same host
    expect((await inCtr(a1, ['ping', '-c1', '-W1', b2Ip])).exitCode).not.toBe(0); // and across hosts
    expect((await inCtr(a1, ['ping', '-c1', '-W2', b1Ip])).exitCode).toBe(0);
    // Connected to the other one too (eth1), it sees and reaches that one's containers; and they see it.
    await host(0).env.ok(['network', 'connect', 'ov2', 'a1']);
    const a1Ov2 = await ipOf(host(0), 'a1', 'ov2');
    expect(await dig(a1, ['b2'])).toBe(b2Ip);
    expect((await inCtr(a1, ['ping', '-c1', '-W2', b2Ip])).exitCode).toBe(0);
    await until(async () => (await dig(b2, ['a1'])) === a1Ov2, 5000, 'a1 on ov2 from b2');
    await host(0).env.ok(['network', 'disconnect', 'ov2', 'a1']);
    await until(async () => (await dig(b2, ['a1'])) === '', 5000, 'a1 gone from ov2 on b2');
    // Stopped and started: a new claim, the name back on the other host.
    await host(1).env.ok(['stop', '-t', '0', 'b1']);
    await until(async () => (await dig(a1, ['b1'])) === '', 5000, 'b1 stopped');
    await host(1).env.ok(['start', 'b1']);
    const b1Again = await ipOf(host(1), 'b1', 'ov');
    await until(async () => (await dig(a1, ['b1'])) === b1Again, 5000, 'b1 started again');
    await host(0).env.ok(['rm', '-f', 'a1', 'a2']);
    await host(1).env.ok(['rm', '-f', 'b1', 'b2']);
  }, 60_000);

  it('network rm is refused while any host has a container on it, and then removes it from every host', async () => {
    await run(host(2), ['--name', 'user', '--network', 'ov2']);
    const refused = await host(0).env.cli(['network', 'rm', 'ov2']);
    expect(refused.exitCode).toBe(125);
    expect(String(refused.stderr)).toMatch(new RegExp(`active endpoints \\(on ${host(2).ip.replace(/\./g, '\\.')}\\)`));
    expect(await host(1).env.ok(['network', 'ls'])).toContain('ov2');
    await host(2).env.ok(['rm', '-f', 'user']);
    const id = (await host(0).env.json<{ Id: string }[]>(['network', 'inspect', 'ov2']))[0]!.Id;
    await host(0).env.ok(['network', 'rm', 'ov2']);
    for (const h of mh.hosts) {
      await until(async () => !(await h.env.ok(['network', 'ls'])).includes('ov2'), 5000, `ov2 gone from host ${h.index}`);
      const links = (await h.sh(['ip', '-o', 'link', 'show'])).stdout;
      expect(links).not.toContain(`dn-${id.slice(0, 12)}`);
      expect(links).not.toContain(`vx-${id.slice(0, 12)}`);
    }
  }, 60_000);

  it('one etcd member of three down: runs and lookups go on', async () => {
    const a = await run(host(0), ['--name', 'm0', '--network', 'ov']);
    await mh.etcd.stop(0);
    try {
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push(await run(host(1), ['--name', `m1-${i}`, '--network', 'ov']));
      for (let i = 0; i < 3; i++) {
        const want = await ipOf(host(1), `m1-${i}`, 'ov');
        await until(async () => (await dig(a, [`m1-${i}`])) === want, 5000, `m1-${i} from host 1`);
      }
      await host(1).env.ok(['rm', '-f', 'm1-0', 'm1-1', 'm1-2']);
      await until(async () => (await dig(a, ['m1-0'])) === '', 5000, 'm1-0 gone');
    } finally {
      await mh.etcd.start(0);
    }
    await host(0).env.ok(['rm', '-f', 'm0']);
  }, 60_000);

  it('a daemon killed with -9 comes back with its containers, their claims and their names', async () => {
    const k = await run(host(0), ['--name', 'keep', '--network', 'ov']);
    const watcher = await run(host(1), ['--name', 'watcher', '--network', 'ov']);
    const kIp = await ipOf(host(0), 'keep', 'ov');
    await until(async () => (await dig(watcher, ['keep'])) === kIp, 5000, 'keep from host 2');
    await mh.killDaemon(0);
    expect((await host(0).env.ok(['ps'])).includes('keep')).toBe(true); // the CLI starts the daemon again, with the cluster settings of its environment
    // Past two TTLs, the old lease is long gone: the claim and the names are on the new one.
    await new Promise((r) => setTimeout(r, 2 * TTL * 1000 + 500));
    expect(await dig(watcher, ['keep'])).toBe(kIp);
    expect(await dig(k, ['watcher'])).toBe(await ipOf(host(1), 'watcher', 'ov'));
    const taken = await host(2).env.cli(['run', '-d', '--name', 'thief', '--network', 'ov', '--ip', kIp, '--', 'sleep', 'infinity']);
    expect(taken.exitCode).toBe(125);
    expect(String(taken.stderr)).toMatch(/already in use/);
    await host(0).env.ok(['rm', '-f', 'keep']);
    await host(1).env.ok(['rm', '-f', 'watcher']);
  }, 60_000);

  it('a host cut off from the store fences itself and refuses runs; back, it claims again and nothing is held twice', async () => {
    const c = await run(host(2), ['--name', 'far', '--network', 'ov']);
    const a = await run(host(0), ['--name', 'near', '--network', 'ov']);
    const farIp = await ipOf(host(2), 'far', 'ov');
    const nearIp = await ipOf(host(0), 'near', 'ov');
    await until(async () => (await dig(a, ['far'])) === farIp, 5000, 'far from host 1');
    await until(async () => (await dig(c, ['near'])) === nearIp, 5000, 'near from host 3');
    await mh.cut(2);
    // The others forget it with its lease; it stops answering theirs (fenced at 1.5 x TTL).
    const forgotten = await until(async () => (await dig(a, ['far'])) === '', (TTL + 4) * 1000, 'far gone from host 1');
    const fenced = await until(async () => (await dig(c, ['near'])) === '', (1.5 * TTL + 4) * 1000, 'host 3 fenced');
    expect(forgotten).toBeLessThan((TTL + 4) * 1000);
    expect(fenced).toBeLessThan((1.5 * TTL + 4) * 1000);
    const refused = await host(2).env.cli(['run', '-d', '--name', 'nope', '--network', 'ov', '--', 'sleep', 'infinity']);
    expect(refused.exitCode).toBe(125);
    expect(String(refused.stderr)).toMatch(/not joined to the cluster store/);
    expect((await host(2).env.ok(['ps', '-a'])).includes('nope')).toBe(false);
    // Its address is free for the others now: one of them takes it.
    await run(host(0), ['--name', 'taker', '--network', 'ov', '--ip', farIp]);
    await mh.restore(2);
    // Back: `far` gets a new address (in its netns, its record, and its name on the other hosts) within 30 s.
    await until(async () => (await ipOf(host(2), 'far', 'ov')) !== farIp, 30_000, 'far readdressed').catch(async (e) => {
      console.log((await host(2).sh(['cat', `${host(2).env.env.DNSNET_RUN}/daemon.log`])).stdout);
      throw e;
    });
    const newIp = await ipOf(host(2), 'far', 'ov');
    expect((await inCtr(c, ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).stdout).toContain(`${newIp}/24`);
    expect((await inCtr(c, ['ip', 'route', 'show', 'default'])).stdout).toMatch(/default via 10\.0\.0\.1/);
    await until(async () => (await dig(a, ['far'])) === newIp, 10_000, 'far answers with its new address on host 1');
    await until(async () => (await dig(c, ['near'])) === nearIp, 10_000, 'host 3 serves the others again');
    expect(await dig(a, ['taker'])).toBe(farIp);
    const pong = await inCtr(a, ['ping', '-c1', '-W2', newIp]);
    if (pong.exitCode !== 0) {
      const id = (await host(0).env.json<{ Id: string }[]>(['network', 'inspect', 'ov']))[0]!.Id.slice(0, 12);
      for (const h of [host(0), host(2)]) console.log(h.index, (await h.sh(['bridge', 'fdb', 'show', 'dev', `vx-${id}`])).stdout, (await h.sh(['ip', 'neigh', 'show', 'dev', `vx-${id}`])).stdout, (await h.sh(['bridge', 'fdb', 'show', 'br', `dn-${id}`])).stdout);
      console.log('far', (await inCtr(c, ['ip', 'neigh'])).stdout, (await inCtr(c, ['ip', 'addr'])).stdout, 'near', (await inCtr(a, ['ip', 'neigh'])).stdout);
      console.log((await host(2).sh(['cat', `${host(2).env.env.DNSNET_RUN}/daemon.log`])).stdout);
    }
    expect(pong.exitCode).toBe(0);
    const all = [await ipOf(host(0), 'near', 'ov'), await ipOf(host(0), 'taker', 'ov'), newIp];
    expect(new Set(all).size).toBe(3);
    await host(0).env.ok(['rm', '-f', 'near', 'taker']);
    await host(2).env.ok(['rm', '-f', 'far']);
  }, 90_000);

  it('a host killed: its names gone from the others within the TTL, its addresses free to claim (--ip)', async () => {
    await run(host(2), ['--name', 'doomed', '--network', 'ov', '--network-alias', 'doom']);
    const a = await run(host(0), ['--name', 'survivor', '--network', 'ov']);
    const doomedIp = await ipOf(host(2), 'doomed', 'ov');
    await until(async () => (await dig(a, ['doom'])) === doomedIp, 5000, 'doomed from host 1');
    await mh.kill(2);
    const gone = await until(async () => (await dig(a, ['doomed'])) === '' && (await dig(a, ['doom'])) === '', (TTL + 4) * 1000, 'doomed gone');
    expect(gone).toBeLessThan((TTL + 4) * 1000);
    expect(await dig(a, ['-x', doomedIp])).toBe('');
    await run(host(1), ['--name', 'heir', '--network', 'ov', '--ip', doomedIp]);
    await until(async () => (await dig(a, ['heir'])) === doomedIp, 5000, 'heir from host 1');
    await host(0).env.ok(['rm', '-f', 'survivor']);
    await host(1).env.ok(['rm', '-f', 'heir']);
  }, 60_000);

  it('teardown leaves nothing on any host', async () => {
    torn = true;
    expect(await mh.teardown()).toEqual([]);
  }, 120_000);
});

describe.skipIf(!HAVE_ETCD)('overlay networks with the default lease (10 s)', () => {
  let mh: MultiHost;
  beforeAll(async () => {
    mh = await createMultiHost(2);
    await mh.hosts[0]!.env.ok(['network', 'create', '-d', 'overlay', 'ovd']);
  }, 120_000);
  afterAll(async () => {
    expect(await mh?.teardown()).toEqual([]);
  }, 120_000);

  it("a dead host's names are gone from the others within 15 s", async () => {
    const [a, b] = mh.hosts as [Host, Host];
    await until(async () => (await a.env.ok(['network', 'ls'])).includes('ovd'), 5000, 'ovd on host 1');
    await run(b, ['--name', 'gone', '--network', 'ovd']);
    const watcher = await run(a, ['--name', 'watch', '--network', 'ovd']);
    await until(async () => (await dig(watcher, ['gone'])) !== '', 5000, 'gone from host 1');
    await mh.kill(1);
    const took = await until(async () => (await dig(watcher, ['gone'])) === '', 20_000, 'gone');
    expect(took).toBeLessThan(15_000);
    await a.env.ok(['rm', '-f', 'watch']);
  }, 60_000);
});

describe('overlay without a cluster', () => {
  it('a single-host daemon refuses -d overlay in one line and makes nothing; a bad --cluster-store stops the daemon before it starts', async () => {
    const e = await createDnsnetEnv();
    try {
      const r = await e.cli(['network', 'create', '-d', 'overlay', 'ov']);
      expect(r.exitCode).toBe(125);
      expect(String(r.stderr).trim().split('\n')).toHaveLength(1);
      expect(String(r.stderr)).toMatch(/this daemon is in no cluster \(start it with --cluster-store and --cluster-advertise/);
      expect(await e.ok(['network', 'ls'])).not.toMatch(/\bov\b/);
      const bad = await execa(process.execPath, [CLI, 'daemon', '--cluster-store', 'consul://10.0.0.1:8500', '--cluster-advertise', '192.0.2.1'], {
        env: { ...e.env, DNSNET_ROOT: `${e.dir}/other`, DNSNET_RUN: `${e.dir}/other-run`, PATH: process.env.PATH ?? '' },
        extendEnv: false,
        reject: false,
        timeout: 20_000,
      });
      expect(bad.exitCode).toBe(125);
      expect(String(bad.stderr)).toMatch(/invalid cluster store "consul:\/\/10.0.0.1:8500"/);
    } finally {
      await e.teardown();
    }
    expect(await leftovers(e)).toEqual([]);
  }, 60_000);
});
