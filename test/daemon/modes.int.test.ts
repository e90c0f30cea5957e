// Docker's network modes through the real CLI and daemon: the pre-defined networks `host` and `none`,
// `--network host`, `--network none` and `--network container:X`, what each refuses, and that each
// survives stop/start, a daemon kill -9 and restart, and `system prune`.
import fs from 'node:fs';
import os from 'node:os';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDnsnetEnv, expectRefused, leftovers, type DnsnetEnv } from '../helpers/dnsnet-env.js';
import { killDaemon } from '../reliability/helpers.js';

interface Ctr {
  Id: string;
  Name: string;
  State: { Status: string; Pid: number };
  Config: { Hostname: string };
  HostsPath: string;
  ResolvConfPath: string;
  HostnamePath: string;
  HostConfig: { NetworkMode: string };
  NetworkSettings: { Networks: Record<string, { NetworkID: string; IPAddress: string }> };
}

interface Net {
  Name: string;
  Id: string;
  Driver: string;
  Scope: string;
  IPAM: { Config: unknown[] };
  Options: Record<string, string>;
  Containers: Record<string, { Name: string; IPv4Address: string }>;
}

let e: DnsnetEnv;
const hostUts = os.hostname();

beforeEach(async () => {
  e = await createDnsnetEnv('nameserver 127.0.0.1\nsearch modes.example\noptions ndots:2\n');
});

afterEach(async () => {
  await e.teardown();
  expect(await leftovers(e)).toEqual([]);
  expect(os.hostname()).toBe(hostUts); // a container's hostname never reaches the host
});

const inspect = async (ref: string) => (await e.json<Ctr[]>(['inspect', ref]))[0]!;
const netnsInode = (pid: number | 'self') => fs.readlinkSync(`/proc/${pid}/ns/net`);
const inside = async (ref: string, cmd: string[]) => (await e.ok(['exec', ref, ...cmd])).trim();

describe('the pre-defined networks', () => {
  it('lists bridge, host and none with Docker drivers; they cannot be created, removed or pruned', async () => {
    const table = await e.ok(['network', 'ls']);
    const rows = table.trim().split('\n').slice(1).map((l) => l.split(/\s+/).slice(1, 4).join(' '));
    expect(rows).toEqual(['bridge bridge local', 'host host local', 'none null local']);
    const [host] = await e.json<Net[]>(['network', 'inspect', 'host']);
    expect(host).toMatchObject({ Name: 'host', Driver: 'host', Scope: 'local', IPAM: { Config: [] }, Options: {} });
    const [none] = await e.json<Net[]>(['network', 'inspect', 'none']);
    expect(none).toMatchObject({ Name: 'none', Driver: 'null', Options: {} });
    expectRefused(await e.cli(['network', 'create', '-d', 'host', 'h2']), /only one instance of "host" network is allowed/);
    expectRefused(await e.cli(['network', 'create', '-d', 'null', 'n2']), /only one instance of "null" network is allowed/);
    expectRefused(await e.cli(['network', 'create', '-d', 'macvlan', 'm']), /unknown network driver "macvlan"/);
    expectRefused(await e.cli(['network', 'create', 'host']), /a network named host already exists/);
    for (const name of ['host', 'none', 'bridge']) {
      expectRefused(await e.cli(['network', 'rm', name]), new RegExp(`${name} is a pre-defined network and cannot be removed`));
    }
    await e.ok(['network', 'prune']);
    await e.ok(['system', 'prune']);
    expect((await e.json<Net[]>(['network', 'inspect', 'host', 'none', 'bridge'])).map((n) => n.Id)).toEqual([host!.Id, none!.Id, expect.any(String)]);
  });
});

describe('--network none', () => {
  it('has only lo, no resolver, the default network files without an address, and refuses what needs a network', async () => {
    await e.ok(['run', '-d', '--name', 'n1', '--network', 'none', '--add-host', 'db:10.213.9.9', 'sleep', 'infinity']);
    const links = await inside('n1', ['ip', '-o', 'link', 'show']);
    expect(links.split('\n').map((l) => l.split(': ')[1])).toEqual(['lo']);
    expect(await inside('n1', ['ip', '-o', '-4', 'addr', 'show', 'lo'])).toContain('127.0.0.1/8');
    const c = await inspect('n1');
    expect(netnsInode(c.State.Pid)).not.toBe(netnsInode('self'));
    const hosts = await inside('n1', ['cat', '/etc/hosts']);
    expect(hosts).toContain('127.0.0.1\tlocalhost');
    expect(hosts).toContain('10.213.9.9\tdb');
    expect(hosts).not.toContain(c.Config.Hostname); // no address: no line of its own, as Docker writes it
    const resolv = await inside('n1', ['cat', '/etc/resolv.conf']);
    expect(resolv).not.toContain('127.0.0.11');
    expect(resolv).toMatch(/^nameserver 8\.8\.8\.8$/m); // the host's only nameserver is loopback: Docker's fallback
    expect(c.HostConfig.NetworkMode).toBe('none');
    expect(Object.keys(c.NetworkSettings.Networks)).toEqual(['none']);
    expect(c.NetworkSettings.Networks.none!.IPAddress).toBe('');
    const [none] = await e.json<Net[]>(['network', 'inspect', 'none']);
    expect(none!.Containers[c.Id]).toMatchObject({ Name: 'n1', IPv4Address: '' });

    await e.ok(['network', 'create', 'app']);
    expectRefused(await e.cli(['network', 'connect', 'app', 'n1']), /container cannot be connected to multiple networks with one of the networks in private \(none\) mode/);
    await e.ok(['run', '-d', '--name', 'b1', '--network', 'app', 'sleep', 'infinity']);
    expectRefused(await e.cli(['network', 'connect', 'none', 'b1']), /in private \(none\) mode/);
    expectRefused(await e.cli(['run', '--rm', '--network', 'none', '--ip', '10.1.2.3', 'true']), /user specified IP address is supported on user defined networks only/);
    expectRefused(await e.cli(['run', '--rm', '--network', 'none', '--network-alias', 'x', 'true']), /network-scoped alias is supported only for containers in user defined networks/);
  });
});

describe('--network host', () => {
  it("runs in the host's netns with its own mount and UTS namespaces and copies of the host's files", async () => {
    await e.ok(['run', '-d', '--name', 'h1', '--network', 'host', 'sleep', 'infinity']);
    const c = await inspect('h1');
    expect(netnsInode(c.State.Pid)).toBe(netnsInode('self'));
    expect(fs.readlinkSync(`/proc/${c.State.Pid}/ns/mnt`)).not.toBe(fs.readlinkSync('/proc/self/ns/mnt'));
    expect(fs.readlinkSync(`/proc/${c.State.Pid}/ns/uts`)).not.toBe(fs.readlinkSync('/proc/self/ns/uts'));
    expect(c.Config.Hostname).toBe(hostUts); // Docker: the host's name
    expect(await inside('h1', ['hostname'])).toBe(hostUts);
    expect(await inside('h1', ['cat', '/etc/hosts'])).toBe(fs.readFileSync(e.hostHosts, 'utf8').trim());
    expect(await inside('h1', ['cat', '/etc/resolv.conf'])).toBe(fs.readFileSync(e.hostResolvConf, 'utf8').trim());
    expect(c.HostConfig.NetworkMode).toBe('host');
    expect(c.NetworkSettings.Networks.host).toMatchObject({ IPAddress: '' });
    // The host's links are all there.
    const hostLinks = (await execa('ip', ['-o', 'link', 'show'])).stdout.split('\n').length;
    expect((await inside('h1', ['ip', '-o', 'link', 'show'])).split('\n').length).toBe(hostLinks);

    // A change of the host file follows into the copy.
    fs.writeFileSync(e.hostResolvConf, 'nameserver 127.0.0.2\n');
    await expect.poll(() => inside('h1', ['cat', '/etc/resolv.conf']), { timeout: 5000 }).toBe('nameserver 127.0.0.2');

    expectRefused(await e.cli(['network', 'connect', 'bridge', 'h1']), /container sharing network namespace with another container or host cannot be connected to any other network/);
    expectRefused(await e.cli(['network', 'disconnect', 'host', 'h1']), /container cannot be disconnected from host network or connected to host network/);
    expectRefused(await e.cli(['run', '--rm', '--network', 'host', '--link', 'h1', 'true']), /host type networking can't be used with links/);
  });

  it('applies --hostname, --add-host and --dns* (loopback nameservers without a warning)', async () => {
    const r = await e.cli(['run', '--rm', '--network', 'host', '-h', 'hostmode', '--add-host', 'db:10.213.9.9', '--dns', '127.0.0.53', '--dns-search', 's.example', '--', 'sh', '-c', 'hostname; cat /etc/hosts /etc/resolv.conf']);
    expect(r.exitCode).toBe(0);
    expect(String(r.stderr)).toBe('');
    const out = String(r.stdout);
    expect(out.split('\n')[0]).toBe('hostmode');
    expect(out).toContain('10.213.9.9\tdb');
    expect(out).toContain('127.0.0.1\tlocalhost');
    expect(out).not.toContain('host-only-name'); // with --add-host, Docker writes its own file instead of the copy
    expect(out).toMatch(/^nameserver 127\.0\.0\.53$/m);
    expect(out).toMatch(/^search s\.example$/m);
    expect(os.hostname()).toBe(hostUts);
  });
});

describe('--network container:X', () => {
  it("joins X's netns and shares its files; answers to no name of its own; refuses conflicting flags", async () => {
    await e.ok(['network', 'create', 'app']);
    await e.ok(['run', '-d', '--name', 'base', '--network', 'app', '-h', 'basehost', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'peer', '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'side', '--network', 'container:base', 'sleep', 'infinity']);
    const base = await inspect('base');
    const side = await inspect('side');
    expect(netnsInode(side.State.Pid)).toBe(netnsInode(base.State.Pid));
    expect(side.HostConfig.NetworkMode).toBe(`container:${base.Id}`);
    expect(side.NetworkSettings.Networks).toEqual({});
    expect([side.HostsPath, side.ResolvConfPath, side.HostnamePath]).toEqual([base.HostsPath, base.ResolvConfPath, base.HostnamePath]);
    expect(await inside('side', ['hostname'])).toBe('basehost');
    expect(await inside('side', ['cat', '/etc/hosts'])).toBe(await inside('base', ['cat', '/etc/hosts']));
    const baseIp = base.NetworkSettings.Networks.app!.IPAddress;
    expect(await inside('side', ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).toContain(`${baseIp}/`);
    // It uses X's resolver, and has no name of its own.
    expect(await inside('side', ['getent', 'hosts', 'peer'])).toMatch(/^\d+\.\d+\.\d+\.\d+\s+peer$/);
    expect((await e.cli(['exec', 'peer', 'getent', 'hosts', 'side'])).exitCode).not.toBe(0);
    expect(await inside('peer', ['getent', 'hosts', 'base'])).toContain(baseIp);
    // By short ID too.
    await e.ok(['run', '-d', '--name', 'side2', '--network', `container:${base.Id.slice(0, 12)}`, 'sleep', 'infinity']);
    expect(netnsInode((await inspect('side2')).State.Pid)).toBe(netnsInode(base.State.Pid));

    const conflicts: [string[], RegExp][] = [
      [['-h', 'x'], /conflicting options: hostname and the network mode/],
      [['--add-host', 'a:1.2.3.4'], /conflicting options: custom host-to-IP mapping and the network mode/],
      [['--dns', '10.1.1.1'], /conflicting options: dns and the network mode/],
      [['--dns-search', 'a.example'], /conflicting options: dns and the network mode/],
      [['--dns-option', 'ndots:1'], /conflicting options: dns and the network mode/],
      [['--link', 'peer'], /conflicting options: container type network can't be used with links/],
      [['--network-alias', 'x'], /network-scoped alias is supported only for containers in user defined networks/],
      [['--ip', '10.1.2.3'], /user specified IP address is supported on user defined networks only/],
    ];
    for (const [flags, why] of conflicts) expectRefused(await e.cli(['run', '--rm', '--network', 'container:base', ...flags, 'true']), why);
    expectRefused(await e.cli(['run', '--rm', '--network', 'container:nothere', 'true']), /no such container: nothere/);
    expectRefused(await e.cli(['run', '--rm', '--network', 'container:', 'true']), /invalid container format container:<name\|id>/);
    expectRefused(await e.cli(['network', 'connect', 'app', 'side']), /container sharing network namespace with another container or host cannot be connected/);
    expect((await e.ok(['ps', '-a', '-q'])).trim().split('\n')).toHaveLength(4); // the refusals made nothing
  });

  it('is refused when X is not running; loses its network when X stops, as in Docker; X can be removed', async () => {
    await e.ok(['network', 'create', 'app']);
    await e.ok(['run', '-d', '--name', 'base', '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'side', '--network', 'container:base', 'sleep', 'infinity']);
    await e.ok(['stop', '-t', '0', 'base']);
    // Still running, in a netns with only lo left.
    expect((await inspect('side')).State.Status).toBe('running');
    expect(await inside('side', ['ip', '-o', 'link', 'show'])).not.toContain('eth0');
    expectRefused(await e.cli(['run', '--rm', '--network', 'container:base', 'true']), /cannot join network of a non running container: base/);
    await e.ok(['stop', '-t', '0', 'side']);
    expectRefused(await e.cli(['start', 'side']), /cannot join network of a non running container/);
    // X back: a start joins its new netns.
    await e.ok(['start', 'base']);
    await e.ok(['start', 'side']);
    const base = await inspect('base');
    expect(netnsInode((await inspect('side')).State.Pid)).toBe(netnsInode(base.State.Pid));
    // X removed while joined: Docker lets it go; the joined container keeps running without a network.
    await e.ok(['rm', '-f', 'base']);
    expect((await inspect('side')).State.Status).toBe('running');
    expect(await inside('side', ['ip', '-o', 'link', 'show'])).not.toContain('eth0');
    await e.ok(['stop', '-t', '0', 'side']);
    expectRefused(await e.cli(['start', 'side']), /no such container/);
  });
});

describe('every mode survives', () => {
  it('stop/start, a daemon kill -9 and restart, and system prune', async () => {
    await e.ok(['network', 'create', 'app']);
    await e.ok(['run', '-d', '--name', 'base', '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'hm', '--network', 'host', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'nm', '--network', 'none', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'jm', '--network', 'container:base', 'sleep', 'infinity']);
    const check = async () => {
      const [base, h, n, j] = await Promise.all(['base', 'hm', 'nm', 'jm'].map(inspect));
      for (const c of [base, h, n, j]) expect(c!.State.Status).toBe('running');
      expect(netnsInode(h!.State.Pid)).toBe(netnsInode('self'));
      expect(await inside('nm', ['ip', '-o', 'link', 'show'])).not.toContain('eth0');
      expect(netnsInode(j!.State.Pid)).toBe(netnsInode(base!.State.Pid));
    };
    await check();
    for (const name of ['jm', 'nm', 'hm']) await e.ok(['stop', '-t', '0', name]);
    for (const name of ['hm', 'nm', 'jm']) await e.ok(['start', name]);
    await check();
    const pids = await Promise.all(['hm', 'nm', 'jm'].map(async (r) => (await inspect(r)).State.Pid));
    await killDaemon(e);
    await e.ok(['system', 'prune']); // starts a new daemon, which re-adopts them; prune removes nothing of theirs
    await check();
    expect(await Promise.all(['hm', 'nm', 'jm'].map(async (r) => (await inspect(r)).State.Pid))).toEqual(pids);
    const log = fs.readFileSync(`${e.env.DNSNET_RUN}/daemon.log`, 'utf8');
    for (const name of ['hm', 'nm', 'jm']) expect(log).toContain(`re-adopted container ${name} `);
  });
});
