// Podman's network stack without Podman, as aardvark-dns's own integration tests drive it: Debian 12's
// netavark 1.4 runs in a throwaway "host" netns of the test's with dnsnet's installed `aardvark-dns` as its
// DNS server; "containers" are bare netns that netavark sets up from the JSON Podman would give it. The
// upstream is a dnsmasq on that netns's loopback (the host resolv.conf of this dnsnet names only it), so
// nothing leaves the machine. Teardown: netavark teardown of every container, then the aardvark-dns
// process and the daemon, the netns, the dnsmasq, the files.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa, type Result, type ResultPromise } from 'execa';
import { afterEach, beforeEach, expect } from 'vitest';
import { tableName } from '../../src/state/kernel-names.js';
import { CLI } from './dnsnet-env.js';
import { createTestNetns, type TestNetns } from './netns.js';

export const NETAVARK = '/usr/lib/podman/netavark';
export const HAVE_NETAVARK = fs.existsSync(NETAVARK) && fs.existsSync('/usr/sbin/iptables') && fs.existsSync('/usr/sbin/dnsmasq');

export interface NetSpec {
  network: string;
  subnet: string; // 10.x.y.0/24 or fdxx:...::/64
  ip: string;
  aliases?: string[];
  internal?: boolean;
  /** The bridge's name (netavark's `network_interface`); one per network name. */
  bridge?: string;
}

export interface Ctr {
  id: string;
  name: string;
  ns: TestNetns;
  /** Every network it was set up on (for teardown, merged as Podman would pass them). */
  nets: NetSpec[];
  dns: string[];
}

export interface PodmanHost {
  tag: string;
  dir: string;
  /** netavark's --config; the aardvark-dns directory is `${config}/aardvark-dns`. */
  config: string;
  helper: string;
  host: TestNetns;
  env: Record<string, string>;
  resolvConf: string;
  /** Run a command in the host netns (where netavark, the daemon and dnsmasq run). */
  inHost(argv: string[], opts?: { timeoutMs?: number; env?: Record<string, string> }): ResultPromise;
  /** `netavark setup` of a new container (expectOk: fail unless it exits 0). */
  container(name: string, nets: NetSpec[], opts?: { dns?: string[]; expectOk?: boolean; fd9?: string }): Promise<{ ctr: Ctr; result: Result }>;
  /** `network connect`: netavark setup of one more network for an existing container. */
  connect(ctr: Ctr, net: NetSpec): Promise<Result>;
  teardownCtr(ctr: Ctr): Promise<Result>;
  /** `dig ARGS` from a container (or 'host'): stdout, trimmed. */
  dig(from: Ctr | 'host', args: string[]): Promise<string>;
  /** A second DNS server (dnsmasq) in the host netns on `ip`, answering `--address` entries. */
  dnsmasq(ip: string, addresses: string[]): Promise<void>;
  /** Stop the dnsmasq on 127.0.0.1 (it holds port 53 there; aardvark-dns's 600 cases have no upstream). */
  stopUpstream(): Promise<void>;
  aardvarkPid(): number | undefined;
  daemonPid(): number | undefined;
  teardown(): Promise<void>;
}

const random = (n: number): string => crypto.randomBytes(n).toString('hex');
export const randomId = (): string => random(32);
export const randomSubnet4 = (): string => `10.${crypto.randomInt(100, 250)}.${crypto.randomInt(0, 256)}.0/24`;
const hex16 = (): string => crypto.randomInt(0x1000, 0x10000).toString(16); // no leading zero: written as dig prints it
export const randomSubnet6 = (): string => `fd${random(1)}:${hex16()}:${hex16()}:${hex16()}::/64`;
export const gatewayOf = (subnet: string): string => (subnet.includes(':') ? `${subnet.split('::')[0]}::1` : subnet.replace(/0\/24$/, '1'));
export const ipIn = (subnet: string, n: number): string => (subnet.includes(':') ? `${subnet.split('::')[0]}::${(n + 2).toString(16)}` : subnet.replace(/0\/24$/, String(n + 2)));

function readPid(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8'));
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number | undefined, ms = 5000): Promise<void> {
  for (let t = 0; alive(pid) && t < ms; t += 50) await new Promise((r) => setTimeout(r, 50));
}

/** The JSON `netavark setup` reads on stdin for one container (what Podman 4.3 passes). */
export function setupJson(ctr: { id: string; name: string; dns: string[] }, nets: NetSpec[]): string {
  const networks: Record<string, unknown> = {};
  const info: Record<string, unknown> = {};
  nets.forEach((n, i) => {
    networks[n.network] = { static_ips: [n.ip], aliases: n.aliases ?? [], interface_name: `eth${i}` };
    info[n.network] = {
      name: n.network,
      id: crypto.createHash('sha256').update(n.network).digest('hex'),
      driver: 'bridge',
      network_interface: n.bridge,
      subnets: [{ subnet: n.subnet, gateway: gatewayOf(n.subnet) }],
      ipv6_enabled: n.subnet.includes(':'),
      internal: n.internal === true,
      dns_enabled: true,
      ipam_options: { driver: 'host-local' },
    };
  });
  return JSON.stringify({ container_id: ctr.id, container_name: ctr.name, networks, network_info: info, dns_servers: ctr.dns });
}

/**
 * The DNSNET_* of a dnsnet that lives in `dir`: its state and run roots, a host resolv.conf naming only
 * 127.0.0.1 (the test's dnsmasq, in the netns where the daemon will run), its own default bridge name.
 */
export function hermeticDnsnet(dir: string, tag: string): { env: Record<string, string>; resolvConf: string } {
  const resolvConf = path.join(dir, 'host-resolv.conf');
  fs.writeFileSync(resolvConf, 'nameserver 127.0.0.1\n');
  const env: Record<string, string> = {
    DNSNET_ROOT: path.join(dir, 'state'),
    DNSNET_RUN: path.join(dir, 'run'),
    DNSNET_HOST_RESOLV_CONF: resolvConf,
    DNSNET_SYSTEMD_RESOLV_CONF: path.join(dir, 'systemd-resolv.conf'),
    DNSNET_DEFAULT_BRIDGE: `dnt${tag}d`,
    DNSNET_HOST_HOSTS: path.join(dir, 'hosts'),
  };
  fs.writeFileSync(env.DNSNET_HOST_HOSTS!, '127.0.0.1\tlocalhost\n');
  return { env, resolvConf };
}

/** A PodmanHost for every test of the file (made before each, torn down after each, leftovers checked). */
export function podmanHostPerTest(): { readonly h: PodmanHost; ctr(name: string, nets: NetSpec[], dns?: string[]): Promise<Ctr>; made: Ctr[] } {
  let host: PodmanHost | undefined;
  const made: Ctr[] = [];
  beforeEach(async () => {
    host = await createPodmanHost();
    made.length = 0;
  });
  afterEach(async () => {
    await host!.teardown();
    expect(await podmanLeftovers(host!, made)).toEqual([]);
  });
  return {
    get h() {
      return host!;
    },
    async ctr(name, nets, dns) {
      const { ctr: c } = await host!.container(name, nets, dns ? { dns } : {});
      made.push(c);
      return c;
    },
    made,
  };
}

export async function createPodmanHost(): Promise<PodmanHost> {
  const tag = random(3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `dnsnet-pm-${tag}-`));
  const config = path.join(dir, 'netavark');
  fs.mkdirSync(config);
  const { env, resolvConf } = hermeticDnsnet(dir, tag);
  const host = await createTestNetns();
  const containers: Ctr[] = [];
  const helpers: number[] = [];
  const bridges = new Map<string, string>();
  const baseEnv = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', DBUS_SYSTEM_BUS_ADDRESS: '' };
  const inHost = (argv: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}) =>
    execa('nsenter', [`--net=${host.path}`, ...argv], { reject: false, timeout: opts.timeoutMs ?? 30_000, env: { ...baseEnv, ...env, ...(opts.env ?? {}) }, extendEnv: false, stdin: 'ignore' });
  const helperDir = path.join(dir, 'bin');
  const install = await execa(process.execPath, [CLI, 'system', 'podman', 'install', '--dir', helperDir], { env: { ...baseEnv, ...env }, extendEnv: false, reject: false });
  if (install.exitCode !== 0) throw new Error(`podman install: ${install.stderr}`);
  const helper = path.join(helperDir, 'aardvark-dns');
  const up = await inHost(['dnsmasq', '--conf-file=/dev/null', '--interface=lo', '--bind-interfaces', '--no-hosts', '--no-resolv', `--pid-file=${dir}/dnsmasq.pid`, '--address=/aone/', '--address=/bone/', '--address=/testname/198.51.100.1', '--address=/testname.local/198.51.100.2', '--address=/testname6/2001:db8::53']);
  if (up.exitCode !== 0) throw new Error(`dnsmasq: ${up.stderr}`);
  helpers.push(readPid(`${dir}/dnsmasq.pid`)!);

  const bridgeFor = (n: NetSpec): NetSpec => {
    if (!bridges.has(n.network)) bridges.set(n.network, `dnt${tag}${bridges.size}`);
    return { ...n, bridge: n.bridge ?? bridges.get(n.network)! };
  };
  // fd9: netavark started with one more descriptor open on that file (no close-on-exec), as a shell leaves one.
  const netavark = (cmd: 'setup' | 'teardown', ctr: Ctr, nets: NetSpec[], fd9?: string) => {
    const argv = ['nsenter', `--net=${host.path}`, NETAVARK, '--config', config, '-a', helper, cmd, ctr.ns.path];
    const [file, ...args] = fd9 ? ['bash', '-c', 'exec 9>>"$0"; exec "$@"', fd9, ...argv] : argv;
    return execa(file!, args, { input: setupJson(ctr, nets), reject: false, timeout: 30_000, env: { ...baseEnv, ...env }, extendEnv: false });
  };
  const aardvarkPid = () => readPid(path.join(config, 'aardvark-dns', 'aardvark.pid'));
  /**
   * Until the host, asking the network's gateway, gets (or no longer gets) the container's address: netavark
   * returns once it has written the file and signalled, and the server reads the change a few ms later (a
   * container's own start takes longer; aardvark-dns reloads asynchronously too). Bounded: a server that
   * never takes the change fails the test's own assertion. How long it takes is measured in bench/start.sh.
   */
  const settled = async (name: string, n: NetSpec, present: boolean): Promise<void> => {
    const gw = gatewayOf(n.subnet);
    for (let t0 = Date.now(); Date.now() - t0 < 3000; ) {
      const r = await inHost(['dig', '+short', '+time=1', '+tries=1', name, `@${gw}`, n.subnet.includes(':') ? 'AAAA' : 'A']);
      if (String(r.stdout).split('\n').includes(n.ip) === present) return;
      await new Promise((res) => setTimeout(res, 20));
    }
  };
  const daemonPid = () => readPid(path.join(env.DNSNET_RUN!, 'dnsnet.pid'));

  return {
    tag,
    dir,
    config,
    helper,
    host,
    env,
    resolvConf,
    inHost,
    async container(name, nets, opts = {}) {
      const ns = await createTestNetns();
      const ctr: Ctr = { id: randomId(), name, ns, nets: nets.map(bridgeFor), dns: opts.dns ?? [] };
      containers.push(ctr);
      const result = await netavark('setup', ctr, ctr.nets, opts.fd9);
      if (opts.expectOk !== false && result.exitCode !== 0) throw new Error(`netavark setup ${name}: exit ${result.exitCode}: ${result.stderr}`);
      if (opts.expectOk !== false) for (const n of ctr.nets) await settled(name, n, true);
      return { ctr, result };
    },
    async connect(ctr, net) {
      const n = bridgeFor(net);
      // The new network's interface comes after the ones the container has.
      const r = await execa('nsenter', [`--net=${host.path}`, NETAVARK, '--config', config, '-a', helper, 'setup', ctr.ns.path], {
        input: setupJson(ctr, [n]).replace('"interface_name":"eth0"', `"interface_name":"eth${ctr.nets.length}"`),
        reject: false,
        timeout: 30_000,
        env: { ...baseEnv, ...env },
        extendEnv: false,
      });
      if (r.exitCode !== 0) throw new Error(`netavark setup (connect) ${ctr.name}: ${r.stderr}`);
      ctr.nets.push(n);
      await settled(ctr.name, n, true);
      return r;
    },
    async teardownCtr(ctr) {
      const nets = ctr.nets;
      const r = await netavark('teardown', ctr, nets);
      ctr.nets = [];
      if (r.exitCode === 0) for (const n of nets) await settled(ctr.name, n, false);
      return r;
    },
    async dig(from, args) {
      const r = from === 'host' ? await inHost(['dig', '+time=5', '+tries=1', ...args]) : await from.ns.exec(['dig', '+time=5', '+tries=1', ...args]);
      return String(r.stdout).trim();
    },
    async dnsmasq(ip, addresses) {
      const pidFile = `${dir}/dnsmasq-${ip}.pid`;
      const r = await inHost(['dnsmasq', '--conf-file=/dev/null', '--except-interface=lo', `--listen-address=${ip}`, '--bind-interfaces', '--no-hosts', '--no-resolv', `--pid-file=${pidFile}`, ...addresses.map((a) => `--address=${a}`)]);
      if (r.exitCode !== 0) throw new Error(`dnsmasq ${ip}: ${r.stderr}`);
      helpers.push(readPid(pidFile)!);
    },
    async stopUpstream() {
      const pid = helpers[0];
      if (alive(pid)) process.kill(pid!, 'SIGKILL');
      await waitGone(pid);
    },
    aardvarkPid,
    daemonPid,
    async teardown() {
      for (const c of containers) if (c.nets.length > 0) await netavark('teardown', c, c.nets);
      // Our aardvark-dns leaves with its last network; make sure (a failed test may have left it), then
      // the daemon: in that order, or the aardvark-dns would start a new daemon.
      const a = aardvarkPid();
      if (alive(a)) process.kill(a!, 'SIGTERM');
      await waitGone(a);
      for (const p of (await execa('pgrep', ['-f', `${helper}|${config}`], { reject: false })).stdout.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(p), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      const d = daemonPid();
      if (alive(d)) process.kill(d!, 'SIGTERM');
      await waitGone(d);
      for (const p of helpers) if (alive(p)) process.kill(p, 'SIGKILL');
      for (const c of containers) await c.ns.destroy().catch(() => undefined);
      // Bridges netavark made live in the host netns and go with it. A daemon started outside it (a test
      // of that) may have made its default bridge and table in ours.
      await host.destroy().catch(() => undefined);
      await execa('ip', ['link', 'delete', env.DNSNET_DEFAULT_BRIDGE!], { reject: false });
      await execa('nft', ['delete', 'table', 'inet', tableName(path.resolve(env.DNSNET_ROOT!))], { reject: false });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Everything this host left: processes that name its directory, netns of its containers. */
export async function podmanLeftovers(h: PodmanHost, ctrs: Ctr[]): Promise<string[]> {
  const found: string[] = [];
  const ps = String((await execa('pgrep', ['-af', h.dir], { reject: false })).stdout).split('\n').filter(Boolean);
  for (const p of ps) found.push(`process ${p}`);
  for (const c of [...ctrs, { ns: h.host }]) if (fs.existsSync(c.ns.path)) found.push(`netns ${c.ns.path}`);
  return found;
}
