// Shared by the reliability tests: the daemon's pid and RSS, node scripts run inside a container's
// netns, kernel snapshots (netns, links, nft) and a hermetic env with a fake upstream on 127.x.
import { netnsName } from '../../src/state/kernel-names.js';
import { execa, type Result } from 'execa';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createDnsnetEnv, type DnsnetEnv } from '../helpers/dnsnet-env.js';
import { randomLoopback, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';

export const CLIENTS = fileURLToPath(new URL('./clients/', import.meta.url));

export interface Ctr {
  Id: string;
  Name: string;
  State: { Status: string; Pid: number; ExitCode: number; Error?: string };
  NetworkSettings: { Networks: Record<string, { IPAddress: string; Gateway: string; MacAddress: string; Aliases: string[] | null }> };
}

export interface Net {
  Name: string;
  Id: string;
  Internal: boolean;
  IPAM: { Config: { Subnet: string; Gateway: string }[] };
  Containers: Record<string, { Name: string; IPv4Address: string }>;
}

/** A hermetic env whose host resolv.conf names only a fake upstream on 127.53.x.y (nothing leaves the machine). */
export async function envWithUpstream(answers: Record<string, string> = { 'www.example.test': '192.0.2.44' }): Promise<{ e: DnsnetEnv; upstream: FakeUpstream }> {
  const upstream = await startFakeUpstream(randomLoopback(), answers);
  try {
    const e = await createDnsnetEnv(`nameserver ${upstream.ip}\n`);
    return { e, upstream };
  } catch (error) {
    await upstream.close();
    throw error;
  }
}

export function daemonPid(e: DnsnetEnv): number {
  try {
    return Number(fs.readFileSync(`${e.env.DNSNET_RUN}/dnsnet.pid`, 'utf8').trim());
  } catch {
    return 0;
  }
}

/** Resident set size of a process in KiB, from /proc (0 when it is gone). */
export function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export function fdCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** The process exists and is not a zombie (a killed daemon may linger unreaped under init). */
export function alive(pid: number): boolean {
  return pid > 0 && fs.existsSync(`/proc/${pid}`) && !isZombie(pid);
}

export const netnsOf = netnsName;

/** Run `node clients/<script> args...` inside a container's netns (host filesystem, host node). */
export function nodeInNetns(id: string, script: string, args: string[], timeoutMs = 120_000): Promise<Result> {
  return execa('nsenter', [`--net=/run/netns/${netnsOf(id)}`, process.execPath, `${CLIENTS}${script}`, ...args], { reject: false, timeout: timeoutMs });
}

/** One query from inside a container: the answer's addresses (empty on NXDOMAIN), or 'timeout'. */
export async function lookup(id: string, name: string, opts: { tcp?: boolean; type?: string; timeoutMs?: number } = {}): Promise<{ rcode: string; answers: string[] } | 'timeout'> {
  const r = await nodeInNetns(id, 'query.mjs', [name, opts.type ?? 'A', opts.tcp ? 'tcp' : 'udp', String(opts.timeoutMs ?? 1000)], 20_000);
  const out = String(r.stdout).trim();
  if (out === 'timeout' || out === '') return 'timeout';
  return JSON.parse(out) as { rcode: string; answers: string[] };
}

export async function ipNetnsList(): Promise<string[]> {
  const out = String((await execa('ip', ['netns', 'list'], { reject: false })).stdout);
  return out.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

export async function linkNames(): Promise<string[]> {
  const out = String((await execa('ip', ['-o', 'link', 'show'], { reject: false })).stdout);
  return out
    .split('\n')
    .map((l) => /^\d+:\s+([^:@]+)/.exec(l)?.[1] ?? '')
    .filter(Boolean);
}

export async function nftTable(table: string): Promise<string> {
  const r = await execa('nft', ['list', 'table', 'inet', table], { reject: false });
  return r.exitCode === 0 ? String(r.stdout) : '';
}

export async function listContainers(e: DnsnetEnv): Promise<Ctr[]> {
  const ids = String((await e.cli(['ps', '-a', '-q'])).stdout).split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  return e.json<Ctr[]>(['inspect', ...ids]);
}

export async function listNetworks(e: DnsnetEnv): Promise<Net[]> {
  const names = String(await e.ok(['network', 'ls', '--format', 'json']))
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { Name: string }).Name);
  return e.json<Net[]>(['network', 'inspect', ...names]);
}

/** SIGKILL the daemon and wait until it is gone. */
export async function killDaemon(e: DnsnetEnv): Promise<number> {
  const pid = daemonPid(e);
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
    for (let i = 0; i < 100 && alive(pid) && !isZombie(pid); i++) await sleep(20);
  }
  return pid;
}

function isZombie(pid: number): boolean {
  try {
    return / Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\)/, ''));
  } catch {
    return true;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `check` until it returns true or the deadline passes; returns the elapsed ms, or -1 on timeout. */
export async function pollUntil(check: () => Promise<boolean> | boolean, deadlineMs: number, everyMs = 25): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > deadlineMs) return -1;
    await sleep(everyMs);
  }
}

/** The kernel objects that belong to a set of containers and networks of one env. */
export async function kernelObjectsOf(ids: string[], devices: string[]): Promise<string[]> {
  const ns = new Set(await ipNetnsList());
  const links = new Set(await linkNames());
  const found: string[] = [];
  for (const id of ids) if (ns.has(netnsOf(id))) found.push(`netns ${netnsOf(id)}`);
  for (const d of devices) if (links.has(d)) found.push(`link ${d}`);
  return found;
}

/** Processes still running that were started for this env (daemon, socket helpers, containers by pid). */
export function processesOf(e: DnsnetEnv): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (environ.includes(`DNSNET_ROOT=${e.env.DNSNET_ROOT}`) || cmd.includes(e.env.DNSNET_ROOT!)) out.push(`${pid} ${cmd.trim()}`);
    } catch {
      // gone
    }
  }
  return out;
}

export async function resolveAll(id: string, names: string[], type = 'A'): Promise<Record<string, { rcode: string; answers: string[] } | 'timeout'>> {
  const r = await nodeInNetns(id, 'resolve-all.mjs', ['--type', type, ...names], 20_000);
  return JSON.parse(String(r.stdout)) as Record<string, { rcode: string; answers: string[] } | 'timeout'>;
}

interface StateEndpoint {
  networkId: string;
  networkName: string;
  ifname: string;
  hostVeth: string;
  ipv4: string;
  prefixLen: number;
}
export interface StateContainer {
  id: string;
  name: string;
  state: { status: string; pid: number };
  endpoints: StateEndpoint[];
}
export interface StateNetwork {
  id: string;
  name: string;
  driver: string;
  device: string;
  internal: boolean;
  isDefault?: boolean;
  ipam: { subnet: string; gateway: string }[];
}

/** The records on disk (every file must parse: the writes are atomic). */
export function readState(e: DnsnetEnv): { containers: StateContainer[]; networks: StateNetwork[]; stray: string[] } {
  const root = e.env.DNSNET_ROOT!;
  const stray: string[] = [];
  const networks: StateNetwork[] = [];
  for (const f of fs.readdirSync(`${root}/networks`)) {
    if (!f.endsWith('.json')) stray.push(`networks/${f}`);
    else networks.push(JSON.parse(fs.readFileSync(`${root}/networks/${f}`, 'utf8')) as StateNetwork);
  }
  const containers: StateContainer[] = [];
  for (const id of fs.readdirSync(`${root}/containers`)) {
    const files = fs.readdirSync(`${root}/containers/${id}`);
    for (const f of files) if (f.includes('.tmp-')) stray.push(`containers/${id}/${f}`);
    if (!files.includes('config.json')) {
      stray.push(`containers/${id} (no record)`);
      continue;
    }
    containers.push(JSON.parse(fs.readFileSync(`${root}/containers/${id}/config.json`, 'utf8')) as StateContainer);
  }
  return { containers, networks, stray };
}

interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

/**
 * Compare every record with the kernel: each running container's netns holds exactly its recorded
 * addresses, each recorded veth sits on its network's bridge, each bridge carries only recorded
 * veths, addresses are distinct per network, the nft table names exactly the live bridges.
 * Returns the mismatches (empty when consistent).
 */
export async function checkConsistency(e: DnsnetEnv): Promise<string[]> {
  const bad: string[] = [];
  const state = readState(e);
  const { containers, stray } = state;
  // The pre-defined `host` and `none` have no kernel objects of their own; their containers no netns of theirs (host) or only lo.
  const networks = state.networks.filter((n) => n.driver === 'bridge');
  bad.push(...stray.map((s) => `stray file ${s}`));
  const byNet = new Map(networks.map((n) => [n.id, n]));
  const ns = new Set(await ipNetnsList());
  const seen = new Map<string, string>(); // network:ip -> container
  const vethsOf = new Map<string, Set<string>>(); // bridge -> recorded veths
  for (const n of networks) vethsOf.set(n.device, new Set());
  for (const c of containers) {
    if (c.state.status !== 'running') {
      if (c.endpoints.length > 0) bad.push(`${c.name}: ${c.state.status} but has endpoints`);
      if (ns.has(netnsOf(c.id))) bad.push(`${c.name}: ${c.state.status} but netns ${netnsOf(c.id)} exists`);
      continue;
    }
    if (!ns.has(netnsOf(c.id))) {
      bad.push(`${c.name}: running but no netns`);
      continue;
    }
    const addrs = JSON.parse(String((await execa('ip', ['-n', netnsOf(c.id), '-j', 'addr', 'show'])).stdout)) as IpAddr[];
    const kernel = addrs
      .filter((a) => a.ifname !== 'lo')
      .flatMap((a) => a.addr_info.filter((i) => i.family === 'inet').map((i) => `${a.ifname} ${i.local}/${i.prefixlen}`))
      .sort();
    const recorded = c.endpoints.map((ep) => `${ep.ifname} ${ep.ipv4}/${ep.prefixLen}`).sort();
    if (kernel.join(',') !== recorded.join(',')) bad.push(`${c.name}: kernel has [${kernel.join(', ')}], record has [${recorded.join(', ')}]`);
    for (const ep of c.endpoints) {
      const net = byNet.get(ep.networkId);
      if (!net) {
        bad.push(`${c.name}: endpoint on unknown network ${ep.networkName}`);
        continue;
      }
      const key = `${net.id}:${ep.ipv4}`;
      if (seen.has(key)) bad.push(`${c.name} and ${seen.get(key)} share ${ep.ipv4} on ${net.name}`);
      seen.set(key, c.name);
      vethsOf.get(net.device)!.add(ep.hostVeth);
    }
  }
  const table = await nftTable(e.table);
  const links = new Set(await linkNames());
  for (const n of networks) {
    if (!links.has(n.device)) {
      bad.push(`network ${n.name}: no bridge ${n.device}`);
      continue;
    }
    const onBridge = String((await execa('ip', ['-o', 'link', 'show', 'master', n.device])).stdout)
      .split('\n')
      .map((l) => /^\d+:\s+([^:@]+)/.exec(l)?.[1])
      .filter((x): x is string => !!x)
      .sort();
    const want = [...vethsOf.get(n.device)!].sort();
    if (onBridge.join(',') !== want.join(',')) bad.push(`bridge ${n.device} (${n.name}) has [${onBridge.join(', ')}], records say [${want.join(', ')}]`);
    const gw = String((await execa('ip', ['-o', '-4', 'addr', 'show', 'dev', n.device])).stdout);
    if (!gw.includes(`${n.ipam[0]!.gateway}/`)) bad.push(`bridge ${n.device}: no gateway ${n.ipam[0]!.gateway}`);
    if (!table.includes(`"${n.device}"`)) bad.push(`nft table ${e.table}: no rule for ${n.device}`);
  }
  for (const dev of table.match(/"(dn-[0-9a-f]{12}|dnt[0-9a-f]{8})"/g) ?? []) {
    const d = dev.slice(1, -1);
    if (!networks.some((n) => n.device === d)) bad.push(`nft table ${e.table}: rule for ${d}, which no network owns`);
  }
  return bad;
}
