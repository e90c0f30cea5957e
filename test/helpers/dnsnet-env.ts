// A hermetic dnsnet for integration tests: own state/run roots, own host resolv.conf, own default
// bridge name, the real CLI and daemon (dist/), and a teardown that removes every kernel object.
import { execa, type Result } from 'execa';
import { expect } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsName, tableName } from '../../src/state/kernel-names.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/dnsnet.cjs', import.meta.url));

export interface DnsnetEnv {
  dir: string;
  env: Record<string, string>;
  hostResolvConf: string;
  /** The host /etc/hosts this env's daemon reads (a `--network host` container gets a copy). */
  hostHosts: string;
  defaultBridge: string;
  table: string;
  /** Kernel objects this env's daemon made (filled by teardown): all must be gone afterwards. */
  owned: { netns: string[]; links: string[]; leakedProcesses: string[] };
  /** Run the CLI; never throws: look at exitCode / stdout / stderr. */
  cli(args: string[], opts?: { input?: string; timeout?: number }): Promise<Result>;
  /** Run the CLI and fail unless it exits 0; returns stdout. */
  ok(args: string[]): Promise<string>;
  json<T = unknown>(args: string[]): Promise<T>;
  teardown(): Promise<void>;
}

/**
 * A non-loopback nameserver that never leaves the machine: an address on a throwaway link of the host
 * (so forwarding to it is local delivery, answered by "port unreachable"). Tests that need a host
 * resolv.conf with a non-loopback server use this, never a routable address.
 */
export const LOCAL_NAMESERVER = '10.213.254.1';

export interface DnsnetEnvOptions {
  /** Run the CLI (and so the daemon it starts) in this netns (by name): a "host" of a multi-host test. */
  netns?: string;
  /** More DNSNET_* settings (the cluster's). */
  env?: Record<string, string>;
}

export async function createDnsnetEnv(hostResolv = 'nameserver 127.0.0.1\n', opts: DnsnetEnvOptions = {}): Promise<DnsnetEnv> {
  const tag = crypto.randomBytes(4).toString('hex');
  const dummy = `dnt${tag}l`;
  if (hostResolv.includes(LOCAL_NAMESERVER)) {
    await execa('ip', ['link', 'add', dummy, 'type', 'bridge']); // no dummy module on every kernel
    await execa('ip', ['addr', 'add', `${LOCAL_NAMESERVER}/32`, 'dev', dummy]);
    await execa('ip', ['link', 'set', dummy, 'up']);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `dnsnet-it-${tag}-`));
  const hostResolvConf = path.join(dir, 'host-resolv.conf');
  fs.writeFileSync(hostResolvConf, hostResolv);
  const hostHosts = path.join(dir, 'host-hosts');
  fs.writeFileSync(hostHosts, `127.0.0.1\tlocalhost\n10.213.77.7\thost-only-name-${tag}\n`);
  const stateRoot = path.join(dir, 'state');
  const defaultBridge = `dnt${tag}`;
  const env: Record<string, string> = {
    DNSNET_ROOT: stateRoot,
    DNSNET_RUN: path.join(dir, 'run'),
    DNSNET_HOST_RESOLV_CONF: hostResolvConf,
    DNSNET_SYSTEMD_RESOLV_CONF: path.join(dir, 'systemd-resolv.conf'),
    DNSNET_DEFAULT_BRIDGE: defaultBridge,
    DNSNET_HOST_HOSTS: hostHosts,
    ...opts.env,
  };
  // In a host netns: nsenter switches the netns only (mounts stay the machine's, as on a real host).
  const inNetns = (file: string, args: string[]): [string, string[]] => (opts.netns ? ['nsenter', [`--net=/run/netns/${opts.netns}`, '--', file, ...args]] : [file, args]);
  const table = tableName(path.resolve(stateRoot));
  const cli = (args: string[], opts: { input?: string; timeout?: number } = {}) =>
    execa(...inNetns(process.execPath, [CLI, ...args]), {
      env: { ...env, PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
      extendEnv: false,
      reject: false,
      timeout: opts.timeout ?? 60_000,
      ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
    });
  const ok = async (args: string[]) => {
    const r = await cli(args);
    if (r.exitCode !== 0) throw new Error(`dnsnet ${args.join(' ')} exited ${r.exitCode}: ${String(r.stderr)}`);
    return String(r.stdout);
  };
  return {
    dir,
    env,
    hostResolvConf,
    hostHosts,
    defaultBridge,
    table,
    cli,
    ok,
    json: async <T>(args: string[]) => JSON.parse(await ok(args)) as T,
    owned: { netns: [], links: [], leakedProcesses: [] },
    teardown: async function (this: DnsnetEnv) {
      // What this env owns, read before anything is removed: other tests' objects are not ours.
      const containersDir = path.join(stateRoot, 'containers');
      if (fs.existsSync(containersDir)) this.owned.netns.push(...fs.readdirSync(containersDir).map((id) => netnsName(id)));
      const nets = await cli(['network', 'ls', '--format', 'json']);
      for (const line of String(nets.stdout).split('\n').filter(Boolean)) {
        const dev = (JSON.parse(line) as { Options?: Record<string, string> }).Options?.['com.docker.network.bridge.name'];
        if (dev) this.owned.links.push(dev);
      }
      // Containers first (their processes, veths, netns), then networks, then the daemon and the
      // objects it keeps for the default network.
      const ps = await cli(['ps', '-a', '-q']);
      const ids = String(ps.stdout).split('\n').filter(Boolean);
      if (ids.length > 0) await cli(['rm', '-f', ...ids]);
      await cli(['network', 'prune']);
      const pidFile = path.join(env.DNSNET_RUN!, 'dnsnet.pid');
      if (fs.existsSync(pidFile)) {
        const pid = Number(fs.readFileSync(pidFile, 'utf8'));
        try {
          process.kill(pid, 'SIGTERM');
          for (let i = 0; i < 100 && fs.existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 50));
        } catch {
          // gone already
        }
      }
      // A container process still alive now escaped `rm -f`: it still has this env's files bind-mounted
      // over its /etc. Kill it, and report it (leftovers() lists it: a leak is a bug).
      for (const pid of processesMounting(dir)) {
        this.owned.leakedProcesses.push(`${pid} (${readCmdline(pid)})`);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      await execa(...inNetns('ip', ['link', 'delete', defaultBridge]), { reject: false });
      await execa('ip', ['link', 'delete', dummy], { reject: false });
      await execa(...inNetns('nft', ['delete', 'table', 'inet', table]), { reject: false });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Kernel objects of one env that should not exist after teardown. */
export async function leftovers(e: Pick<DnsnetEnv, 'defaultBridge' | 'table' | 'owned'>, extraLinks: string[] = []): Promise<string[]> {
  const found: string[] = [];
  const links = String((await execa('ip', ['-o', 'link', 'show'], { reject: false })).stdout);
  for (const name of [e.defaultBridge, ...e.owned.links, ...extraLinks]) if (links.includes(`: ${name}:`) || links.includes(`: ${name}@`)) found.push(`link ${name}`);
  for (const ns of e.owned.netns) if (fs.existsSync(`/run/netns/${ns}`)) found.push(`netns ${ns}`);
  const tables = String((await execa('nft', ['list', 'tables'], { reject: false })).stdout);
  if (tables.includes(e.table)) found.push(`table ${e.table}`);
  for (const p of e.owned.leakedProcesses ?? []) found.push(`process ${p}, alive after teardown`);
  return found;
}

/**
 * Pids of processes (in any mount namespace) that have something under `dir` mounted. Matched on the
 * directory's unique name: mountinfo shows paths relative to their filesystem (/tmp may be a tmpfs).
 */
export function processesMounting(dir: string): number[] {
  const pids: number[] = [];
  const mark = `/${path.basename(dir)}/`;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/mountinfo`, 'utf8').includes(mark)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function readCmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '?';
  }
}

/** A refused command: exit 125 and exactly one stderr line `dnsnet: ...` that says why. */
export function expectRefused(r: Result, why: RegExp): void {
  expect(r.exitCode).toBe(125);
  const lines = String(r.stderr).trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^dnsnet: /);
  expect(lines[0]).toMatch(why);
}
