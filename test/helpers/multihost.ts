// A cluster of dnsnet hosts on one machine (issue 18): N "hosts", each a network namespace of the test with
// its own dnsnet daemon (own state root, run dir, host resolv.conf, default bridge), joined by an underlay
// bridge in a netns of its own (192.168.R.0/24: hosts .1-.N, never 10/8, the overlay pool), and a real etcd
// cluster of 3 members (Debian's etcd 3.4 binary, data on tmpfs) in that underlay netns at .201-.203.
// Everything is made and removed here; traffic stays inside these namespaces.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { execa } from 'execa';
import { createDnsnetEnv, processesMounting, type DnsnetEnv } from './dnsnet-env.js';
import { createEtcdCluster, HAVE_ETCD, type EtcdCluster } from './etcd.js';
import { netnsName } from '../../src/state/kernel-names.js';

export { HAVE_ETCD };

export interface Host {
  index: number;
  /** The host's netns (by name) and its underlay address. */
  netns: string;
  ip: string;
  env: DnsnetEnv;
  /** Run a command in the host's netns. */
  sh(cmd: string[]): Promise<{ exitCode: number | undefined; stdout: string; stderr: string }>;
}

export interface MultiHost {
  hosts: Host[];
  etcd: EtcdCluster;
  underlay: string;
  store: string;
  /** The host dies: its daemon and its containers killed, its netns and its containers' netns gone. */
  kill(i: number): Promise<void>;
  /** The host's underlay link loses its carrier (cut), or gets it back. */
  cut(i: number): Promise<void>;
  restore(i: number): Promise<void>;
  /** The daemon of host i killed with SIGKILL (its containers keep running). */
  killDaemon(i: number): Promise<void>;
  teardown(): Promise<string[]>;
}

async function ip(args: string[]): Promise<void> {
  await execa('ip', args);
}

export async function createMultiHost(n: number, opts: { ttl?: number } = {}): Promise<MultiHost> {
  const tag = crypto.randomBytes(3).toString('hex');
  const underlay = `dnt${tag}u`;
  const net = `192.168.${crypto.randomInt(100, 250)}`;
  const hosts: Host[] = [];
  let etcd: EtcdCluster | undefined;
  const killed = new Set<number>();
  const made: string[] = [];
  const teardown = async (): Promise<string[]> => {
    for (const h of hosts) {
      if (killed.has(h.index)) continue;
      // Overlay networks are not pruned (they are the cluster's): remove them, then the rest.
      await h.env.cli(['rm', '-f', ...String((await h.env.cli(['ps', '-aq'])).stdout).split('\n').filter(Boolean)]);
    }
    const first = hosts.find((h) => !killed.has(h.index));
    if (first) {
      for (const line of String((await first.env.cli(['network', 'ls', '--format', 'json'])).stdout).split('\n').filter(Boolean)) {
        const netJson = JSON.parse(line) as { Name: string; Driver: string };
        if (netJson.Driver === 'overlay') await first.env.cli(['network', 'rm', netJson.Name]);
      }
    }
    for (const h of hosts) if (!killed.has(h.index)) await h.env.teardown();
    await etcd?.teardown();
    for (const ns of made.reverse()) await execa('ip', ['netns', 'delete', ns], { reject: false });
    // What must be gone now: every netns of ours, every container netns, every process.
    const left: string[] = [];
    const netns = fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : [];
    for (const ns of netns) if (ns.startsWith(`dnt${tag}`)) left.push(`netns ${ns}`);
    for (const h of hosts) {
      for (const ns of h.env.owned.netns) if (netns.includes(ns)) left.push(`netns ${ns}`);
      for (const p of h.env.owned.leakedProcesses) left.push(`process ${p}`);
    }
    return left;
  };
  try {
    await ip(['netns', 'add', underlay]);
    made.push(underlay);
    await ip(['-n', underlay, 'link', 'set', 'lo', 'up']);
    await ip(['-n', underlay, 'link', 'add', 'br0', 'type', 'bridge']);
    for (let m = 1; m <= 3; m++) await ip(['-n', underlay, 'addr', 'add', `${net}.${200 + m}/24`, 'dev', 'br0']);
    await ip(['-n', underlay, 'link', 'set', 'br0', 'up']);
    etcd = await createEtcdCluster(3, { netns: underlay, ips: [1, 2, 3].map((m) => `${net}.${200 + m}`) });
    const store = `etcd://${etcd.ips.map((a) => `${a}:2379`).join(',')}`;
    for (let i = 0; i < n; i++) {
      const ns = `dnt${tag}h${i + 1}`;
      const addr = `${net}.${i + 1}`;
      await ip(['netns', 'add', ns]);
      made.push(ns);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `h${i + 1}`, 'netns', underlay]);
      await ip(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
      await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      await ip(['-n', underlay, 'link', 'set', `h${i + 1}`, 'master', 'br0', 'up']);
      const env = await createDnsnetEnv('nameserver 127.0.0.1\n', {
        netns: ns,
        env: { DNSNET_CLUSTER_STORE: store, DNSNET_CLUSTER_ADVERTISE: addr, ...(opts.ttl ? { DNSNET_CLUSTER_TTL: String(opts.ttl) } : {}) },
      });
      hosts.push({
        index: i,
        netns: ns,
        ip: addr,
        env,
        sh: async (cmd) => {
          const r = await execa('nsenter', [`--net=/run/netns/${ns}`, '--', ...cmd], { reject: false, timeout: 30_000 });
          return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
        },
      });
    }
    const killDaemon = async (i: number): Promise<void> => {
      const h = hosts[i]!;
      const pid = Number(fs.readFileSync(`${h.env.env.DNSNET_RUN}/dnsnet.pid`, 'utf8'));
      process.kill(pid, 'SIGKILL');
      for (let t = 0; t < 100 && fs.existsSync(`/proc/${pid}`); t++) await new Promise((r) => setTimeout(r, 20));
    };
    return {
      hosts,
      etcd,
      underlay,
      store,
      killDaemon,
      async kill(i) {
        const h = hosts[i]!;
        killed.add(i);
        await killDaemon(i).catch(() => undefined);
        for (const pid of processesMounting(h.env.dir)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
        const containers = `${h.env.env.DNSNET_ROOT}/containers`;
        for (const id of fs.existsSync(containers) ? fs.readdirSync(containers) : []) {
          h.env.owned.netns.push(netnsName(id));
          await execa('ip', ['netns', 'delete', netnsName(id)], { reject: false });
        }
        await execa('ip', ['netns', 'delete', h.netns], { reject: false });
        fs.rmSync(h.env.dir, { recursive: true, force: true });
      },
      async cut(i) {
        await ip(['-n', underlay, 'link', 'set', `h${i + 1}`, 'down']);
      },
      async restore(i) {
        await ip(['-n', underlay, 'link', 'set', `h${i + 1}`, 'up']);
      },
      teardown,
    };
  } catch (error) {
    await teardown();
    throw error;
  }
}
