// Published ports through the real CLI and daemon, with real TCP and UDP servers in containers, reached from
// a LAN client (a netns with a veth to the host, made here), the host itself (its address, 127.0.0.1, ::1),
// containers on the same and on another network (hairpin), and the container itself. Every -p form, the
// reservation of host ports, stop/start/rm, a daemon kill -9, --internal, host mode, and bad input.
import crypto from 'node:crypto';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDnsnetEnv, expectRefused, leftovers, type DnsnetEnv } from '../helpers/dnsnet-env.js';
import { killDaemon } from '../reliability/helpers.js';

const PEERS = fileURLToPath(new URL('../helpers/port-peers.cjs', import.meta.url));
const NODE = process.execPath;

interface Ctr {
  Id: string;
  State: { Status: string };
  HostConfig: { PortBindings: Record<string, { HostIp: string; HostPort: string }[]>; PublishAllPorts: boolean };
  Config: { ExposedPorts: Record<string, object> };
  NetworkSettings: { Ports: Record<string, { HostIp: string; HostPort: string }[] | null>; Networks: Record<string, { IPAddress: string; GlobalIPv6Address: string }> };
}

let e: DnsnetEnv;
/** The LAN: a netns with a veth to the host; the host's end has `hostIp` (a local address of the host). */
let lan: { ns: string; veth: string; hostIp: string; clientIp: string; hostIp6: string; clientIp6: string };
let base: number;

beforeEach(async () => {
  e = await createDnsnetEnv('nameserver 127.0.0.1\n');
  const tag = crypto.randomBytes(3).toString('hex');
  const octet = 100 + crypto.randomInt(150);
  lan = { ns: `dntlan${tag}`, veth: `dntl${tag}`, hostIp: `10.213.${octet}.1`, clientIp: `10.213.${octet}.2`, hostIp6: `fd00:213:${octet}::1`, clientIp6: `fd00:213:${octet}::2` };
  const sh = (args: string[]) => execa('ip', args);
  await sh(['netns', 'add', lan.ns]);
  await sh(['link', 'add', lan.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', lan.ns]);
  await sh(['addr', 'add', `${lan.hostIp}/24`, 'dev', lan.veth]);
  await sh(['addr', 'add', `${lan.hostIp6}/64`, 'dev', lan.veth, 'nodad']);
  await sh(['link', 'set', lan.veth, 'up']);
  for (const line of [`addr add ${lan.clientIp}/24 dev eth0`, `addr add ${lan.clientIp6}/64 dev eth0 nodad`, 'link set eth0 up', 'link set lo up']) {
    await sh(['-n', lan.ns, ...line.split(' ')]);
  }
  base = 20000 + crypto.randomInt(30000);
});

afterEach(async () => {
  await e.teardown();
  await execa('ip', ['netns', 'delete', lan.ns], { reject: false });
  await execa('ip', ['link', 'delete', lan.veth], { reject: false });
  expect(await leftovers(e, [lan.veth])).toEqual([]);
});

const inspect = async (ref: string) => (await e.json<Ctr[]>(['inspect', ref]))[0]!;
const out = (r: { exitCode?: number; stdout: unknown }) => (r.exitCode === 0 ? String(r.stdout).trim() : `failed (${r.exitCode})`);
const fromHost = async (proto: 'tcp' | 'udp', host: string, port: number) => out(await execa(NODE, [PEERS, proto, host, String(port)], { reject: false }));
const fromLan = async (proto: 'tcp' | 'udp', host: string, port: number) => out(await execa('ip', ['netns', 'exec', lan.ns, NODE, PEERS, proto, host, String(port)], { reject: false }));
const fromCtr = async (ctr: string, proto: 'tcp' | 'udp', host: string, port: number) => out(await e.cli(['exec', ctr, NODE, PEERS, proto, host, String(port)]));
const serve = (name: string, net: string, flags: string[], ports: number[]) => e.ok(['run', '-d', '--name', name, '--network', net, ...flags, '--', NODE, PEERS, 'serve', ...ports.map(String)]);

/** Whether a host process can listen on the port (false: someone holds it). */
function hostCanListen(port: number, host = '0.0.0.0'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host }, () => s.close(() => resolve(true)));
  });
}

async function ready(proto: 'tcp' | 'udp', host: string, port: number): Promise<void> {
  await expect.poll(() => fromHost(proto, host, port), { timeout: 10_000, interval: 100 }).toMatch(/ from /);
}

describe('published ports are reached', () => {
  it('TCP and UDP from the LAN (source kept), the host (its address, 127.0.0.1, ::1), containers of the same and another network, and itself', async () => {
    await e.ok(['network', 'create', 'app']);
    await e.ok(['network', 'create', 'other']);
    await serve('web', 'app', ['-p', `${base}:80`, '-p', `${base}:5300/udp`], [80, 5300]);
    await e.ok(['run', '-d', '--name', 'peer', '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'far', '--network', 'other', 'sleep', 'infinity']);
    const web = await inspect('web');
    const gw = (await e.json<{ IPAM: { Config: { Gateway: string }[] } }[]>(['network', 'inspect', 'app']))[0]!.IPAM.Config[0]!.Gateway;
    await ready('tcp', '127.0.0.1', base);

    // The LAN client keeps its own address (DNAT only, as Docker's kernel path does).
    expect(await fromLan('tcp', lan.hostIp, base)).toBe(`80 from ${lan.clientIp}`);
    expect(await fromLan('udp', lan.hostIp, base)).toBe(`5300 from ${lan.clientIp}`);
    // The host on its own address keeps it too; on loopback it is masqueraded to the bridge's gateway.
    expect(await fromHost('tcp', lan.hostIp, base)).toBe(`80 from ${lan.hostIp}`);
    expect(await fromHost('udp', lan.hostIp, base)).toBe(`5300 from ${lan.hostIp}`);
    expect(await fromHost('tcp', '127.0.0.1', base)).toBe(`80 from ${gw}`);
    expect(await fromHost('udp', '127.0.0.1', base)).toBe(`5300 from ${gw}`);
    // ::1 goes through the daemon's proxy (the kernel cannot DNAT IPv6 loopback).
    expect(await fromHost('tcp', '::1', base)).toMatch(/^80 from /);
    expect(await fromHost('udp', '::1', base)).toMatch(/^5300 from /);
    // Hairpin: containers reach it through the host's address, from the same network, another one, and itself.
    for (const ctr of ['peer', 'far', 'web']) {
      expect(await fromCtr(ctr, 'tcp', lan.hostIp, base)).toMatch(/^80 from /);
      expect(await fromCtr(ctr, 'udp', lan.hostIp, base)).toMatch(/^5300 from /);
    }
    // And the container's own address, directly, as before.
    expect(await fromCtr('peer', 'tcp', web.NetworkSettings.Networks.app!.IPAddress, 80)).toMatch(/^80 from /);
    // Nothing of it reached another tool's table: only dnsnet's own has the rules.
    const ruleset = String((await execa('nft', ['list', 'ruleset'])).stdout);
    const tables = ruleset.split(/^table /m).filter((t) => t.includes(`dport ${base}`));
    expect(tables.map((t) => t.split(' ')[1])).toEqual([e.table]);
  });

  it('IPv6 on an --ipv6 network, from the LAN and the host', async () => {
    await e.ok(['network', 'create', '--ipv6', 'v6net']);
    await serve('web6', 'v6net', ['-p', `${base}:80`, '-p', `${base}:5300/udp`], [80, 5300]);
    await ready('tcp', '127.0.0.1', base);
    const ctr6 = (await inspect('web6')).NetworkSettings.Networks.v6net!.GlobalIPv6Address;
    expect(ctr6).not.toBe('');
    expect(await fromLan('tcp', lan.hostIp6, base)).toBe(`80 from ${lan.clientIp6}`);
    expect(await fromLan('udp', lan.hostIp6, base)).toBe(`5300 from ${lan.clientIp6}`);
    expect(await fromHost('tcp', lan.hostIp6, base)).toBe(`80 from ${lan.hostIp6}`);
    expect(await fromHost('tcp', '::1', base)).toMatch(/^80 from /);
    expect(String((await execa('nft', ['list', 'table', 'inet', e.table])).stdout)).toContain(`dnat ip6 to [${ctr6}]:80`);
  });
});

describe('every -p form', () => {
  it('ranges, IP::CPORT, CPORT alone, [IPv6]:HP:CP, a host pool, --expose and -P; port, ps and inspect in Docker shapes', async () => {
    const [r0, r1, r2] = [base, base + 1, base + 2];
    const pool = [base + 10, base + 11];
    await serve('multi', 'bridge', [
      '-p', `${r0}-${r2}:80-82`,
      '-p', '127.0.0.1::83',
      '-p', '84',
      '-p', `[::1]:${base + 5}:85/tcp`,
      '-p', `${pool[0]}-${pool[1]}:86`,
      '--expose', '87',
      '--expose', '88-89/udp',
      '-P',
    ], [80, 81, 82, 83, 84, 85, 86, 87, 88, 89]);
    await ready('tcp', '127.0.0.1', r0);
    for (const [i, p] of [r0, r1, r2].entries()) expect(await fromLan('tcp', lan.hostIp, p)).toBe(`${80 + i} from ${lan.clientIp}`);
    const c = await inspect('multi');
    const ports = c.NetworkSettings.Ports;
    const hostPort = (key: string, ip: string) => Number(ports[key]!.find((b) => b.HostIp === ip)!.HostPort);
    // IP::CPORT: an ephemeral port on that address only.
    expect(ports['83/tcp']).toHaveLength(1);
    expect(await fromHost('tcp', '127.0.0.1', hostPort('83/tcp', '127.0.0.1'))).toMatch(/^83 from /);
    expect(await fromLan('tcp', lan.hostIp, hostPort('83/tcp', '127.0.0.1'))).toBe('failed (1)');
    // CPORT alone: ephemeral, every address, the same port for IPv4 and IPv6, from the kernel's range.
    const [lo, hi] = (await import('node:fs')).readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    const eph = hostPort('84/tcp', '0.0.0.0');
    expect(eph).toBeGreaterThanOrEqual(lo!);
    expect(eph).toBeLessThanOrEqual(hi!);
    expect(ports['84/tcp']!.map((b) => b.HostIp)).toEqual(['0.0.0.0', '::']);
    expect(hostPort('84/tcp', '::')).toBe(eph);
    expect(await fromLan('tcp', lan.hostIp, eph)).toBe(`84 from ${lan.clientIp}`);
    // [::1]:HP:CP.
    expect(ports['85/tcp']).toEqual([{ HostIp: '::1', HostPort: String(base + 5) }]);
    expect(await fromHost('tcp', '::1', base + 5)).toMatch(/^85 from /);
    // A host pool: the first free port of it.
    expect(hostPort('86/tcp', '0.0.0.0')).toBe(pool[0]);
    // -P: the exposed ports that -p did not publish, on ephemeral ports.
    expect(ports['87/tcp']).toHaveLength(2);
    expect(await fromLan('tcp', lan.hostIp, hostPort('87/tcp', '0.0.0.0'))).toBe(`87 from ${lan.clientIp}`);
    expect(await fromLan('udp', lan.hostIp, hostPort('89/udp', '0.0.0.0'))).toBe(`89 from ${lan.clientIp}`);

    expect(c.HostConfig.PortBindings['80/tcp']).toEqual([{ HostIp: '', HostPort: String(r0) }]);
    expect(c.HostConfig.PortBindings['83/tcp']).toEqual([{ HostIp: '127.0.0.1', HostPort: '' }]);
    expect(c.HostConfig.PortBindings['86/tcp']).toEqual([{ HostIp: '', HostPort: `${pool[0]}-${pool[1]}` }]);
    expect(c.HostConfig.PublishAllPorts).toBe(true);
    expect(Object.keys(c.Config.ExposedPorts).sort()).toEqual(['80/tcp', '81/tcp', '82/tcp', '83/tcp', '84/tcp', '85/tcp', '86/tcp', '87/tcp', '88/udp', '89/udp']);

    expect(await e.ok(['port', 'multi', '80'])).toBe(`0.0.0.0:${r0}\n[::]:${r0}`);
    expect(await e.ok(['port', 'multi', '85/tcp'])).toBe(`[::1]:${base + 5}`);
    const all = await e.ok(['port', 'multi']);
    expect(all.split('\n')).toContain(`80/tcp -> 0.0.0.0:${r0}`);
    expect(all.split('\n')).toContain(`89/udp -> [::]:${hostPort('89/udp', '::')}`);
    const none = await e.cli(['port', 'multi', '99']);
    expect(none.exitCode).toBe(1);
    expect(String(none.stderr).trim()).toBe("Error: No public port '99/tcp' published for multi");
    const ps = await e.ok(['ps']);
    expect(ps.split('\n')[0]).toMatch(/STATUS\s+PORTS\s+NAMES$/);
    expect(ps).toContain(`0.0.0.0:${r0}-${r2}->80-82/tcp`);
    expect(ps).toContain(`[::]:${r0}-${r2}->80-82/tcp`);
    expect(ps).toContain(`127.0.0.1:${hostPort('83/tcp', '127.0.0.1')}->83/tcp`);
  });
});

describe('host ports are reserved', () => {
  it('a second container and a host process are refused; a host process cannot take a published port; bad input changes nothing', async () => {
    await serve('one', 'bridge', ['-p', `${base}:80`, '-p', `${base + 3}:5300/udp`], [80, 5300]);
    await ready('tcp', '127.0.0.1', base);
    const before = { ps: await e.ok(['ps', '-a', '-q']), nft: String((await execa('nft', ['list', 'table', 'inet', e.table])).stdout) };
    expectRefused(await e.cli(['run', '-d', '--name', 'two', '-p', `${base}:81`, 'sleep', 'infinity']), new RegExp(`Bind for 0\\.0\\.0\\.0:${base} failed: port is already allocated`));
    expectRefused(await e.cli(['run', '-d', '--name', 'two', '-p', `127.0.0.1:${base}:81`, 'sleep', 'infinity']), /port is already allocated/);
    // The same port number on the other protocol is another port.
    await e.ok(['run', '-d', '--name', 'udp-too', '-p', `${base}:81/udp`, 'sleep', 'infinity']);
    await e.ok(['rm', '-f', 'udp-too']);
    // A host process cannot take it while it is published.
    expect(await hostCanListen(base)).toBe(false);
    expect(await hostCanListen(base, '127.0.0.1')).toBe(false);
    // A port a host process listens on is refused with the bind error.
    const squatter = net.createServer();
    await new Promise<void>((r) => squatter.listen({ port: base + 1, host: '0.0.0.0' }, r));
    try {
      expectRefused(await e.cli(['run', '-d', '--name', 'three', '-p', `${base + 1}:80`, 'sleep', 'infinity']), new RegExp(`listen tcp4 0\\.0\\.0\\.0:${base + 1}: bind: address already in use`));
    } finally {
      squatter.close();
    }
    const bad: [string, RegExp][] = [
      ['70000:80', /invalid -p "70000:80": invalid hostPort: 70000/],
      ['80:80/foo', /invalid -p "80:80\/foo": invalid proto: foo/],
      ['abc', /invalid -p "abc": invalid containerPort: abc/],
      ['8000-8001:80-82', /invalid ranges specified for container and host Ports: 80-82 and 8000-8001/],
      ['[::1:80:80', /invalid IP address/],
      [`192.0.2.254:${base + 2}:80`, new RegExp(`listen tcp4 192\\.0\\.2\\.254:${base + 2}: bind: cannot assign requested address`)],
    ];
    for (const [p, why] of bad) expectRefused(await e.cli(['run', '-d', '--name', 'bad', '-p', p, 'sleep', 'infinity']), why);
    expectRefused(await e.cli(['run', '-d', '--name', 'bad', '--expose', '80/foo', 'sleep', 'infinity']), /invalid proto: foo/);
    expect(await e.ok(['ps', '-a', '-q'])).toBe(before.ps);
    expect(String((await execa('nft', ['list', 'table', 'inet', e.table])).stdout)).toBe(before.nft);
    expect(await hostCanListen(base + 2)).toBe(true);
  });
});

describe('the life of a published port', () => {
  it('stop releases, start restores, rm releases; a daemon kill -9 keeps it working and the new daemon holds it again', async () => {
    await serve('web', 'bridge', ['-p', `${base}:80`], [80]);
    await ready('tcp', '127.0.0.1', base);
    await e.ok(['stop', '-t', '0', 'web']);
    expect(await hostCanListen(base)).toBe(true);
    expect((await inspect('web')).NetworkSettings.Ports).toEqual({});
    expect(String((await execa('nft', ['list', 'table', 'inet', e.table])).stdout)).not.toContain(`dport ${base}`);
    await e.ok(['start', 'web']);
    await ready('tcp', '127.0.0.1', base);
    expect(await fromLan('tcp', lan.hostIp, base)).toBe(`80 from ${lan.clientIp}`);

    await killDaemon(e);
    // The kernel path does not need the daemon.
    expect(await fromLan('tcp', lan.hostIp, base)).toBe(`80 from ${lan.clientIp}`);
    expect(await fromHost('tcp', '127.0.0.1', base)).toMatch(/^80 from /);
    await e.ok(['ps']); // a new daemon, which re-adopts it and holds its port again
    expect(await hostCanListen(base)).toBe(false);
    expect(await fromHost('tcp', '::1', base)).toMatch(/^80 from /);
    expect(await fromLan('tcp', lan.hostIp, base)).toBe(`80 from ${lan.clientIp}`);

    await e.ok(['rm', '-f', 'web']);
    expect(await hostCanListen(base)).toBe(true);
    expect(await fromLan('tcp', lan.hostIp, base)).toBe('failed (1)');
  });

  it('--internal networks publish nothing; host mode discards ports with a warning', async () => {
    await e.ok(['network', 'create', '--internal', 'sealed']);
    await serve('inner', 'sealed', ['-p', `${base}:80`], [80]);
    const c = await inspect('inner');
    expect(c.HostConfig.PortBindings['80/tcp']).toEqual([{ HostIp: '', HostPort: String(base) }]);
    expect(c.NetworkSettings.Ports).toEqual({ '80/tcp': null });
    expect(await hostCanListen(base)).toBe(true);
    expect(String((await execa('nft', ['list', 'table', 'inet', e.table])).stdout)).not.toContain(`dport ${base}`);

    const r = await e.cli(['run', '--rm', '--network', 'host', '-p', `${base + 1}:80`, 'true']);
    expect(r.exitCode).toBe(0);
    expect(String(r.stderr)).toBe('WARNING: Published ports are discarded when using host network mode');
    expect(await hostCanListen(base + 1)).toBe(true);
  });
});
