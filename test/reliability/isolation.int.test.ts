// Isolation: networks cannot see or reach each other, an --internal network has no way out and
// forwards no DNS, the control socket and state are root-only, and no container can make the
// resolver answer for another network's names. Nothing here leaves the machine: the only pings go
// to addresses of this test's own bridges and containers.
import { execa } from 'execa';
import fs from 'node:fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { CLI, leftovers, type DnsnetEnv } from '../helpers/dnsnet-env.js';
import type { FakeUpstream } from '../helpers/fake-upstream.js';
import { daemonPid, envWithUpstream, netnsOf, nftTable, processesOf, readState, resolveAll, type Ctr, type Net } from './helpers.js';

let e: DnsnetEnv;
let upstream: FakeUpstream;

beforeEach(async () => {
  ({ e, upstream } = await envWithUpstream({ 'www.example.test': '192.0.2.44' }));
});

afterEach(async () => {
  await e.teardown();
  await upstream.close();
  expect(await leftovers(e)).toEqual([]);
});

const inspect = async (ref: string) => (await e.json<Ctr[]>(['inspect', ref]))[0]!;
const ping = async (ctr: string, ip: string) => (await e.cli(['exec', ctr, 'ping', '-c1', '-W1', ip])).exitCode;

it('networks, --internal, the resolver and the control plane are isolated', { timeout: 120_000 }, async () => {
  for (const n of ['blue', 'red']) await e.ok(['network', 'create', n]);
  await e.ok(['network', 'create', '--internal', 'vault']);
  await e.ok(['run', '-d', '--name', 'b1', '--network', 'blue', 'sleep', 'infinity']);
  await e.ok(['run', '-d', '--name', 'b2', '--network', 'blue', 'sleep', 'infinity']);
  // r1 claims blue's names as its aliases: they must stay on red.
  await e.ok(['run', '-d', '--name', 'r1', '--network', 'red', '--network-alias', 'b1', '--network-alias', 'b1.blue', 'sleep', 'infinity']);
  await e.ok(['run', '-d', '--name', 'v1', '--network', 'vault', 'sleep', 'infinity']);
  await e.ok(['run', '-d', '--name', 'v2', '--network', 'vault', 'sleep', 'infinity']);
  const [b1, b2, r1, v1, v2] = await Promise.all(['b1', 'b2', 'r1', 'v1', 'v2'].map(inspect));
  const ipB1 = b1!.NetworkSettings.Networks.blue!.IPAddress;
  const ipR1 = r1!.NetworkSettings.Networks.red!.IPAddress;
  const ipV2 = v2!.NetworkSettings.Networks.vault!.IPAddress;
  const blue = (await e.json<Net[]>(['network', 'inspect', 'blue']))[0]!;
  const vault = readState(e).networks.find((n) => n.name === 'vault')!;

  // 1. Different networks: no names, no packets.
  const fromRed = await resolveAll(r1!.Id, ['b2', 'b2.blue', 'B2.BLUE.', b2!.Id.slice(0, 12), 'v1', 'v1.vault']);
  for (const [name, a] of Object.entries(fromRed)) expect(a, name).toMatchObject({ rcode: 'NXDOMAIN', answers: [] });
  // r1's aliases answer r1 on red, and never leak into blue's view.
  expect((await resolveAll(r1!.Id, ['b1']))['b1']).toEqual({ rcode: 'NOERROR', answers: [ipR1] });
  expect(await resolveAll(b2!.Id, ['b1', 'b1.blue', 'r1', 'r1.red'])).toEqual({
    b1: { rcode: 'NOERROR', answers: [ipB1] },
    'b1.blue': { rcode: 'NOERROR', answers: [ipB1] },
    r1: { rcode: 'NXDOMAIN', answers: [] },
    'r1.red': { rcode: 'NXDOMAIN', answers: [] },
  });
  // A PTR for another network's address is not answered from our records (it is forwarded: NXDOMAIN upstream).
  const ptr = ipB1.split('.').reverse().join('.') + '.in-addr.arpa';
  expect((await resolveAll(r1!.Id, [ptr], 'PTR'))[ptr]).toMatchObject({ answers: [] });
  expect((await resolveAll(b2!.Id, [ptr], 'PTR'))[ptr]).toEqual({ rcode: 'NOERROR', answers: ['b1.blue'] });
  expect(await ping('r1', ipB1)).not.toBe(0);
  expect(await ping('b2', ipB1)).toBe(0); // the same network works, so the failure above is isolation

  // 2. --internal: no default route, drop rules in our table, no packets to another bridge, no DNS forwarding.
  const routes = String((await execa('ip', ['-n', netnsOf(v1!.Id), 'route', 'show'])).stdout);
  expect(routes).not.toMatch(/^default/m);
  const table = await nftTable(e.table);
  expect(table).toMatch(new RegExp(`iifname "${vault.device}" oifname != "${vault.device}" drop`));
  expect(table).toMatch(new RegExp(`oifname "${vault.device}" iifname != "${vault.device}" drop`));
  expect(await ping('v1', blue.IPAM.Config[0]!.Gateway)).not.toBe(0); // the host's address on a different test bridge
  expect(await ping('v1', ipB1)).not.toBe(0);
  expect(await ping('v1', ipV2)).toBe(0);
  const before = upstream.queries;
  expect(await resolveAll(v1!.Id, ['v2', 'www.example.test'])).toEqual({
    v2: { rcode: 'NOERROR', answers: [ipV2] },
    'www.example.test': { rcode: 'SERVFAIL', answers: [] },
  });
  expect(upstream.queries).toBe(before);

  // 3. Root only: the socket, the state and run roots, the records.
  const sock = fs.statSync(`${e.env.DNSNET_RUN}/dnsnet.sock`);
  expect([sock.uid, sock.mode & 0o777]).toEqual([0, 0o600]);
  for (const d of [e.env.DNSNET_ROOT!, e.env.DNSNET_RUN!, `${e.env.DNSNET_ROOT}/containers`, `${e.env.DNSNET_ROOT}/networks`]) {
    expect((fs.statSync(d).mode & 0o777).toString(8), d).toBe('700');
  }
  const records = [
    ...fs.readdirSync(`${e.env.DNSNET_ROOT}/networks`).map((f) => `${e.env.DNSNET_ROOT}/networks/${f}`),
    ...readState(e).containers.map((c) => `${e.env.DNSNET_ROOT}/containers/${c.id}/config.json`),
    `${e.env.DNSNET_RUN}/dnsnet.pid`,
  ];
  for (const f of records) expect((fs.statSync(f).mode & 0o077).toString(8), f).toBe('0');
  // Another user can neither talk to the daemon nor read a record, and starts no daemon of its own.
  const pid = daemonPid(e);
  const asNobody = (argv: string[]) =>
    execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...argv], { reject: false, env: { ...e.env, PATH: process.env.PATH ?? '/usr/bin:/bin' }, extendEnv: false, timeout: 20_000 });
  // Give nobody a path to the socket: open the directories on the way, but not the socket itself.
  const opened = [e.dir, e.env.DNSNET_RUN!];
  for (const d of opened) fs.chmodSync(d, 0o711);
  try {
    const r = await asNobody([process.execPath, CLI, 'ps']);
    expect(r.exitCode).toBe(125);
    expect(String(r.stderr).trim().split('\n')).toHaveLength(1);
    expect(String(r.stderr)).toMatch(/permission denied/i);
    const cat = await asNobody(['cat', records[0]!]);
    expect(cat.exitCode).not.toBe(0);
  } finally {
    fs.chmodSync(e.dir, 0o700);
    fs.chmodSync(e.env.DNSNET_RUN!, 0o700);
  }
  expect(daemonPid(e)).toBe(pid);
  expect(processesOf(e).filter((p) => p.includes(' daemon'))).toHaveLength(1);
});
