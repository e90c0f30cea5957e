// Containers end to end through the real CLI and daemon: run/exec/ps/inspect/stop/start/rm/logs,
// generated files seen from inside, connect/disconnect, exit codes, bad input, and no leaks.
import fs from 'node:fs';
import os from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDnsnetEnv, expectRefused, leftovers, LOCAL_NAMESERVER, processesMounting, type DnsnetEnv } from '../helpers/dnsnet-env.js';

interface Ctr {
  Id: string;
  Name: string;
  State: { Status: string; Pid: number; ExitCode: number };
  Config: { Hostname: string };
  ResolvConfPath: string;
  HostsPath: string;
  HostConfig: { Links: string[] | null };
  NetworkSettings: { Networks: Record<string, { IPAddress: string; Gateway: string; MacAddress: string; Aliases: string[]; Links: string[] | null }> };
  Dnsnet: { ResolvConfEdited: boolean; Upstreams: string[] };
}

let e: DnsnetEnv;
const readOr = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '(absent)');
const hostEtc = { hosts: readOr('/etc/hosts'), resolv: readOr('/etc/resolv.conf'), hostname: readOr('/etc/hostname'), uts: os.hostname() };

beforeEach(async () => {
  e = await createDnsnetEnv(`nameserver 127.0.0.53\nnameserver ${LOCAL_NAMESERVER}\nsearch corp.example\noptions edns0\n`);
});

afterEach(async () => {
  await e.teardown();
  expect(await leftovers(e)).toEqual([]);
  // The host's own files and hostname are never touched: containers get bind mounts in their own mount and UTS namespaces.
  expect({ hosts: readOr('/etc/hosts'), resolv: readOr('/etc/resolv.conf'), hostname: readOr('/etc/hostname'), uts: os.hostname() }).toEqual(hostEtc);
});

async function inspect(ref: string): Promise<Ctr> {
  return (await e.json<Ctr[]>(['inspect', ref]))[0]!;
}

describe('run and exec', () => {
  it('two containers on a user network ping each other by IP and see generated files', async () => {
    await e.ok(['network', 'create', 'app']);
    await e.ok(['run', '-d', '--name', 'c1', '--network', 'app', '--hostname', 'web.local', '--add-host', 'db:10.213.5.5', '--', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'c2', '--net', 'app', 'sleep', 'infinity']);
    const c1 = await inspect('c1');
    const c2 = await inspect('c2');
    const ip1 = c1.NetworkSettings.Networks.app!.IPAddress;
    const ip2 = c2.NetworkSettings.Networks.app!.IPAddress;
    expect(ip1).not.toBe(ip2);
    expect(c1.State.Status).toBe('running');

    expect((await e.cli(['exec', 'c2', 'ping', '-c1', '-W2', ip1])).exitCode).toBe(0);
    expect((await e.cli(['exec', 'c1', 'ping', '-c1', '-W2', ip2])).exitCode).toBe(0);

    expect((await e.ok(['exec', 'c1', 'hostname'])).trim()).toBe('web.local');
    const hosts = await e.ok(['exec', 'c1', 'cat', '/etc/hosts']);
    expect(hosts).toContain('127.0.0.1\tlocalhost');
    expect(hosts).toContain('10.213.5.5\tdb');
    expect(hosts).toContain(`${ip1}\tweb.local web`);
    const resolv = await e.ok(['exec', 'c1', 'cat', '/etc/resolv.conf']);
    expect(resolv).toMatch(/^nameserver 127\.0\.0\.11$/m);
    expect(resolv).toMatch(/^search corp\.example$/m);
    expect(resolv).toMatch(/^options .*edns0/m);
    expect(resolv).toMatch(/ndots:0/);
    expect(fs.readFileSync(c1.ResolvConfPath, 'utf8').trimEnd()).toBe(resolv.trimEnd());
    expect(c1.Dnsnet.Upstreams).toEqual(['127.0.0.53', LOCAL_NAMESERVER]);
  });

  it('the default network gets a filtered copy of the host resolv.conf and --link hosts lines', async () => {
    await e.ok(['run', '-d', '--name', 'db', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'app', '--link', 'db:database', '--dns-option', 'ndots:2', 'sleep', 'infinity']);
    const db = await inspect('db');
    const resolv = await e.ok(['exec', 'app', 'cat', '/etc/resolv.conf']);
    expect(resolv).not.toMatch(/^nameserver 127\./m);
    expect(resolv).toContain(`nameserver ${LOCAL_NAMESERVER}\n`);
    expect(resolv).toMatch(/^options ndots:2$/m);
    const hosts = await e.ok(['exec', 'app', 'cat', '/etc/hosts']);
    expect(hosts).toContain(`${db.NetworkSettings.Networks.bridge!.IPAddress}\tdatabase ${db.Config.Hostname} db`);
  });

  // moby's TestLinksUpdateOnRestart, with a container taking the old address meanwhile.
  it('a legacy link follows its target when it comes back with a new address; while it is gone, no stale line', async () => {
    await e.ok(['run', '-d', '--name', 'one', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'two', '--link', 'one:onetwo', '--link', 'one:one', 'sleep', 'infinity']);
    const lineFor = async (name: string) => (await e.ok(['exec', 'two', 'cat', '/etc/hosts'])).split('\n').find((l) => l.split(/\s+/).slice(1).includes(name));
    const ipOne = (await inspect('one')).NetworkSettings.Networks.bridge!.IPAddress;
    expect((await lineFor('onetwo'))?.split('\t')[0]).toBe(ipOne);
    await e.ok(['stop', '-t', '1', 'one']);
    expect(await lineFor('onetwo')).toBeUndefined(); // its address is free now: no line points at whoever gets it
    await e.ok(['run', '-d', '--name', 'filler', 'sleep', 'infinity']);
    expect((await inspect('filler')).NetworkSettings.Networks.bridge!.IPAddress).toBe(ipOne);
    await e.ok(['start', 'one']);
    const newIp = (await inspect('one')).NetworkSettings.Networks.bridge!.IPAddress;
    expect(newIp).not.toBe(ipOne);
    expect((await lineFor('onetwo'))?.split('\t')[0]).toBe(newIp);
    expect((await lineFor('one'))?.split('\t')[0]).toBe(newIp);
    expect((await e.cli(['exec', 'two', 'ping', '-c1', '-W2', 'onetwo'])).exitCode).toBe(0);
  });

  // moby's TestLinksInspectLinksStarted / ...Stopped.
  it('inspect shows legacy links in Docker\'s form, running or stopped; user-network links on the endpoint', async () => {
    await e.ok(['run', '-d', '--name', 'container1', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'container2', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'testinspectlink', '--link', 'container1:alias1', '--link', 'container2:alias2', 'sleep', 'infinity']);
    const expected = ['/container1:/testinspectlink/alias1', '/container2:/testinspectlink/alias2'];
    expect((await inspect('testinspectlink')).HostConfig.Links?.sort()).toEqual(expected);
    await e.ok(['stop', '-t', '1', 'testinspectlink']);
    expect((await inspect('testinspectlink')).HostConfig.Links?.sort()).toEqual(expected);
    await e.ok(['network', 'create', 'app']);
    await e.ok(['run', '-d', '--name', 'u1', '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'u2', '--network', 'app', '--link', 'u1:alias', 'sleep', 'infinity']);
    const u2 = await inspect('u2');
    expect(u2.HostConfig.Links).toBeNull();
    expect(u2.NetworkSettings.Networks.app!.Links).toEqual(['u1:alias']);
  });

  it('a loopback --dns gets Docker\'s warning, and the run goes ahead (TestRunDNSOptionsBasedOnHostResolvConf)', async () => {
    const r = await e.cli(['run', '--rm', '--dns=127.0.0.1', '--dns-search=mydomain', '--dns-opt=ndots:9', 'cat', '/etc/resolv.conf']);
    expect(r.exitCode).toBe(0);
    expect(String(r.stderr)).toBe('WARNING: Localhost DNS setting (--dns=127.0.0.1) may fail in containers.');
    const body = String(r.stdout).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(body).toEqual(['nameserver 127.0.0.1', 'search mydomain', 'options ndots:9']);
    expect(String((await e.cli(['run', '--rm', '--dns=10.213.0.9', 'true'])).stderr)).toBe('');
  });

  it('passes exit codes through: the command, 127 not found, 126 not executable', async () => {
    expect((await e.cli(['run', '--rm', '--', 'sh', '-c', 'exit 7'])).exitCode).toBe(7);
    expect((await e.cli(['run', '--rm', '--', 'no-such-command'])).exitCode).toBe(127);
    expect((await e.cli(['run', '--rm', '--', '/etc/hostname'])).exitCode).toBe(126);
    expect((await e.cli(['ps', '-a', '-q'])).stdout).toBe('');
    await e.ok(['run', '-d', '--name', 'xx', 'sleep', 'infinity']);
    expect((await e.cli(['exec', 'xx', 'sh', '-c', 'exit 3'])).exitCode).toBe(3);
  });

  it('a process that outlives the container\'s main process is killed with it, as in Docker', async () => {
    // The main process is the second sleep; the first, in the background, would outlive it.
    await e.ok(['run', '-d', '--name', 'forker', '--', 'sh', '-c', 'sleep 1000 & exec sleep 1001']);
    for (let i = 0; i < 40 && processesMounting(e.dir).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(processesMounting(e.dir).length).toBeGreaterThanOrEqual(2);
    await e.ok(['stop', '-t', '1', 'forker']);
    for (let i = 0; i < 40 && processesMounting(e.dir).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(processesMounting(e.dir)).toEqual([]);
  });

  it('stop, start, logs, rm; a process killed from outside is noticed', async () => {
    await e.ok(['run', '-d', '--name', 'web', '--', 'sh', '-c', 'echo hello; exec sleep infinity']);
    const before = await inspect('web');
    await e.ok(['stop', '-t', '2', 'web']);
    const stopped = await inspect('web');
    expect(stopped.State.Status).toBe('exited');
    expect(stopped.State.ExitCode).toBe(143);
    await e.ok(['start', 'web']);
    const again = await inspect('web');
    expect(again.State.Status).toBe('running');
    expect(again.State.Pid).not.toBe(before.State.Pid);
    expect(await e.ok(['logs', 'web'])).toContain('hello');
    process.kill(again.State.Pid, 'SIGKILL');
    let state = again.State.Status;
    for (let i = 0; i < 50 && state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = (await inspect('web')).State.Status;
    }
    expect(state).toBe('exited');
    expect((await inspect('web')).State.ExitCode).toBe(137);
    await e.ok(['rm', 'web']);
    expect(String((await e.cli(['ps', '-a', '-q'])).stdout)).toBe('');
  });

  it('a foreground run stopped by `dnsnet stop` reports its real exit code', async () => {
    const fg = e.cli(['run', '--name', 'fg', 'sleep', '30']);
    let status = '';
    for (let i = 0; i < 100 && status !== 'running'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const r = await e.cli(['inspect', 'fg']);
      if (r.exitCode === 0) status = (JSON.parse(String(r.stdout)) as Ctr[])[0]!.State.Status;
    }
    expect(status).toBe('running');
    await e.ok(['stop', '-t', '5', 'fg']);
    expect((await fg).exitCode).toBe(143);
    const after = await inspect('fg');
    expect(after.State).toMatchObject({ Status: 'exited', ExitCode: 143 });
  });

  it('20 concurrent run -d get 20 distinct addresses', async () => {
    await e.ok(['network', 'create', 'many']);
    const runs = await Promise.all(Array.from({ length: 20 }, (_, i) => e.cli(['run', '-d', '--name', `m${i}`, '--network', 'many', 'sleep', 'infinity'])));
    expect(runs.map((r) => r.exitCode)).toEqual(Array(20).fill(0));
    const all = (await e.ok(['ps', '--format', 'json'])).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ctr);
    const ips = new Set(all.map((c) => c.NetworkSettings.Networks.many!.IPAddress));
    expect(ips.size).toBe(20);
  });

  it('network connect adds eth1 and hosts lines; disconnect removes exactly them', async () => {
    await e.ok(['network', 'create', 'front']);
    await e.ok(['network', 'create', 'back']);
    await e.ok(['run', '-d', '--name', 'ctr', '--network', 'front', 'sleep', 'infinity']);
    const hostsBefore = await e.ok(['exec', 'ctr', 'cat', '/etc/hosts']);
    await e.ok(['network', 'connect', '--alias', 'api', 'back', 'ctr']);
    const c = await inspect('ctr');
    const ip = c.NetworkSettings.Networks.back!.IPAddress;
    expect(c.NetworkSettings.Networks.back!.Aliases).toEqual(['api']);
    const addr = await e.ok(['exec', 'ctr', 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth1']);
    expect(addr).toContain(ip);
    expect(await e.ok(['exec', 'ctr', 'cat', '/etc/hosts'])).toContain(ip);
    const netJson = (await e.json<{ Containers: Record<string, { Name: string }> }[]>(['network', 'inspect', 'back']))[0]!;
    expect(Object.values(netJson.Containers).map((x) => x.Name)).toEqual(['ctr']);
    await e.ok(['network', 'disconnect', 'back', 'ctr']);
    expect(await e.ok(['exec', 'ctr', 'cat', '/etc/hosts'])).toBe(hostsBefore);
    expect((await e.cli(['exec', 'ctr', 'ip', 'link', 'show', 'eth1'])).exitCode).not.toBe(0);
  });
});

describe('daemon restart', () => {
  it('re-adopts running containers: same process, names served again', async () => {
    await e.ok(['network', 'create', 'app']);
    await e.ok(['run', '-d', '--name', 'keeper', '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'asker', '--network', 'app', 'sleep', 'infinity']);
    const before = await inspect('keeper');
    const pidFile = `${e.env.DNSNET_RUN}/dnsnet.pid`;
    const daemon = Number(fs.readFileSync(pidFile, 'utf8'));
    process.kill(daemon, 'SIGTERM');
    for (let i = 0; i < 100 && fs.existsSync(`/proc/${daemon}`); i++) await new Promise((r) => setTimeout(r, 50));
    expect(fs.existsSync(`/proc/${daemon}`)).toBe(false);
    expect(fs.existsSync(`/proc/${before.State.Pid}`)).toBe(true); // containers outlive the daemon

    const after = await inspect('keeper'); // the CLI starts a new daemon
    expect(after.State.Status).toBe('running');
    expect(after.State.Pid).toBe(before.State.Pid);
    const r = await e.cli(['exec', 'asker', 'dig', '+short', '+time=1', '+tries=1', '@127.0.0.11', 'keeper']);
    expect(String(r.stdout).trim()).toBe(after.NetworkSettings.Networks.app!.IPAddress);
  });
});

describe('bad input: one line, exit 125, nothing left behind', () => {
  it.each([
    [['run', '--name', 'bad name', 'true'], /invalid container name/],
    [['run', '--network', 'nosuch', 'true'], /no such network/],
    [['run', '--ip', '10.99.0.5', 'true'], /10\.99\.0\.5/],
    [['run', '--add-host', 'nocolon', 'true'], /add-host/],
    [['run', '--add-host', 'h:notanip', 'true'], /notanip/],
    [['run', '--dns', '1.2.3', 'true'], /--dns/],
    [['run', '--link', 'ghost:g', 'true'], /ghost/],
    [['run', '--network-alias', 'a', 'true'], /aliases/],
    [['run', '--dns-option', 'bad option', 'true'], /option/],
  ])('%j', async (args, why) => {
    expectRefused(await e.cli(args), why);
    expect(String((await e.cli(['ps', '-a', '-q'])).stdout)).toBe('');
  });

  it('a duplicate name is refused', async () => {
    await e.ok(['run', '-d', '--name', 'dup', 'sleep', 'infinity']);
    const r = await e.cli(['run', '-d', '--name', 'dup', 'sleep', 'infinity']);
    expect(r.exitCode).toBe(125);
    expect(String(r.stderr)).toMatch(/already in use/);
  });
});
