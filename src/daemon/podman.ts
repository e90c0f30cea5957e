// Podman's networks served in place of aardvark-dns: each netavark config directory that an `aardvark-dns`
// process of ours (src/cli/aardvark-dns.ts) registers is read here, its listen addresses bound in that
// process's netns, and its names answered by a resolver of their own (aardvark-dns's rules: TTL 0, names
// and aliases, `.dns.podman`, PTR to every name), forwarding with dnsnet's upstream handling.
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import type { PodmanDirJson, PodmanServeSpec } from '../api/types.js';
import { DnsnetError } from '../errors.js';
import { normaliseAddress } from '../ip/index.js';
import { openResolverSockets } from '../netns/resolver-sockets.js';
import { isNetworkFile, readConfigDir, type PodmanNetwork } from '../podman/config.js';
import { Resolver, networkAsker, type ResolverEndpoint, type ResolverStats } from '../resolver/index.js';
import { Mutex } from './mutex.js';

type Log = (line: string) => void;

interface Sockets {
  udp: dgram.Socket;
  tcp: net.Server;
}

interface Dir {
  spec: PodmanServeSpec;
  /** The directory itself (device:inode): the same path in two mount namespaces is two directories. */
  key: string;
  /** Short tag that keeps this directory's networks and containers apart from another's in the resolver. */
  tag: string;
  /** The netns path of its aardvark-dns process when that is not the daemon's; undefined: ours. */
  netns: string | undefined;
  /** The directory as that process sees it (/proc/PID/root/DIR): Podman may run in a mount namespace of its own. */
  files: string;
  networks: Map<string, PodmanNetwork>;
  /** Listen address -> the network it serves (its unknown askers see that network's names). */
  listeners: Map<string, string>;
  /** Resolver ids of the containers registered (-> what was registered, as JSON), and of the network askers. */
  containers: Map<string, string>;
  askers: Set<string>;
  /** A sender's IP -> the resolver id of the container that has it. */
  byIp: Map<string, string>;
  /** Told when another process took the directory over, or the daemon stops: its aardvark-dns leaves. */
  onEnd: (why: 'replaced' | 'stopping') => void;
  /** inotify on the directory: a change is read as netavark writes it, before its SIGHUP arrives. */
  watcher: fs.FSWatcher | undefined;
  /** A reload is queued or running (changes while one runs make one more). */
  pending: 'idle' | 'running' | 'again';
}

const TENTATIVE_WAIT_MS = 3000;

function inode(nsPath: string): number {
  return fs.statSync(nsPath).ino;
}

/** Which directory a process means by its path: device and inode, read through its root (its mount namespace). */
function dirKey(spec: { dir: string; pid: number }): string {
  const st = fs.statSync(`/proc/${spec.pid}/root${spec.dir}`);
  return `${st.dev}:${st.ino}`;
}

/** UDP and TCP on ip:port in our netns; an IPv6 address still in DAD is waited for (up to 3 s). */
async function bindHere(ip: string, port: number): Promise<Sockets> {
  const started = Date.now();
  const udp = await new Promise<dgram.Socket>((resolve, reject) => {
    const attempt = (): void => {
      const s = dgram.createSocket({ type: ip.includes(':') ? 'udp6' : 'udp4' });
      s.once('error', (e: NodeJS.ErrnoException) => {
        s.close();
        if (e.code === 'EADDRNOTAVAIL' && Date.now() - started < TENTATIVE_WAIT_MS) setTimeout(attempt, 100);
        else reject(new DnsnetError('conflict', `failed to bind udp listener on ${hostPort(ip, port)}: ${e.message}`));
      });
      s.bind({ address: ip, port, exclusive: true }, () => {
        s.removeAllListeners('error');
        resolve(s);
      });
    };
    attempt();
  });
  try {
    const tcp = await new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', (e) => reject(new DnsnetError('conflict', `failed to bind tcp listener on ${hostPort(ip, port)}: ${e.message}`)));
      s.listen({ host: ip, port, exclusive: true, backlog: 128 }, () => {
        s.removeAllListeners('error');
        resolve(s);
      });
    });
    return { udp, tcp };
  } catch (error) {
    udp.close();
    throw error;
  }
}

/** The same through a helper entered into `netns` (resolver-sockets.ts), its failure worded as aardvark-dns words it. */
async function bindIn(netns: string, ip: string, port: number): Promise<Sockets> {
  try {
    return await openResolverSockets(netns, { host: ip, port });
  } catch (error) {
    const m = /(bind udp|listen tcp) (\S+): (.*)$/.exec((error as Error).message);
    if (!m) throw error;
    throw new DnsnetError('conflict', `failed to bind ${m[1] === 'bind udp' ? 'udp' : 'tcp'} listener on ${m[2]}: ${m[3]}`);
  }
}

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export class PodmanDns {
  readonly resolver: Resolver;
  private readonly dirs = new Map<string, Dir>();
  private readonly lock = new Mutex();
  private nextTag = 1;
  private readonly ownNetns = inode('/proc/self/ns/net');

  constructor(private readonly log: Log) {
    // aardvark-dns's answers: TTL 0 (containers come back with other addresses), its names, NXDOMAIN for
    // what an internal network may not forward, and an upstream's REFUSED passed on.
    this.resolver = new Resolver({ log, ttl: 0, style: 'podman', noForward: 'nxdomain', passRefused: true });
  }

  setHostUpstreams(servers: string[]): void {
    this.resolver.setHostUpstreams(servers);
  }

  /**
   * Serve `spec.dir` for the aardvark-dns process `spec.pid`: read it, bind every listen address (all or
   * nothing), register its names. Another process's registration of the same directory is ended first.
   * Resolves once the sockets answer; `onEnd` is called if the directory is later taken over.
   */
  serve(spec: PodmanServeSpec, onEnd: Dir['onEnd']): Promise<{ networks: number; watching: boolean }> {
    return this.lock.run(async () => {
      const dirPath = spec.dir;
      let netns: string | undefined = `/proc/${spec.pid}/ns/net`;
      try {
        if (inode(netns) === this.ownNetns) netns = undefined;
      } catch {
        throw new DnsnetError('invalid', `serve ${dirPath}: no process ${spec.pid} (its netns is where the listeners go)`);
      }
      const files = `/proc/${spec.pid}/root${dirPath}`;
      const key = dirKey(spec);
      const old = this.dirs.get(key);
      if (old) {
        await this.drop(old);
        old.onEnd('replaced');
      }
      const d: Dir = { spec, key, tag: `p${this.nextTag++}`, netns, files, networks: new Map(), listeners: new Map(), containers: new Map(), askers: new Set(), byIp: new Map(), onEnd, watcher: undefined, pending: 'idle' };
      const read = await readConfigDir(files);
      if (read.errors.length > 0) throw new DnsnetError('invalid', `serve ${dirPath}: ${read.errors[0]!.message}`);
      await this.apply(d, read.networks);
      this.dirs.set(key, d);
      try {
        d.watcher = fs.watch(files, { persistent: false }, (_event, file) => {
          if (file && isNetworkFile(String(file))) this.changed(d);
        });
        d.watcher.on('error', () => d.watcher?.close());
      } catch {
        // SIGHUP alone then (netavark's contract)
      }
      this.log(`[podman] serving ${dirPath} on port ${spec.port} for aardvark-dns pid ${spec.pid}${netns ? ` (netns of pid ${spec.pid})` : ''}: ${this.describe(d)}`);
      return { networks: d.networks.size, watching: d.watcher !== undefined };
    });
  }

  /** A file of `d` changed (inotify): read the directory again, once more if it changes meanwhile. */
  private changed(d: Dir): void {
    if (d.pending !== 'idle') {
      d.pending = 'again';
      return;
    }
    d.pending = 'running';
    void (async () => {
      while (d.pending !== 'idle' && this.dirs.get(d.key) === d) {
        d.pending = 'running';
        await this.lock.run(() => this.reread(d)).catch((e: unknown) => this.log(`[podman] ${d.spec.dir}: reload: ${(e as Error).message}`));
        if (d.pending === 'running') d.pending = 'idle';
      }
      d.pending = 'idle';
    })();
  }

  /** netavark changed the directory (its SIGHUP to our aardvark-dns `pid`): read it again. */
  reload(dirPath: string, pid: number): Promise<{ networks: number }> {
    return this.lock.run(async () => {
      let d: Dir | undefined;
      try {
        d = this.dirs.get(dirKey({ dir: dirPath, pid }));
      } catch {
        // no such directory or process
      }
      if (!d) throw new DnsnetError('not-found', `reload ${dirPath}: not served (its aardvark-dns is not registered)`);
      return this.reread(d);
    });
  }

  /** Read `d` again (under the lock). A file that does not parse keeps its last good contents. */
  private async reread(d: Dir): Promise<{ networks: number }> {
    const read = await readConfigDir(d.files);
    const networks = read.networks;
    for (const e of read.errors) {
      this.log(`[podman] ${d.spec.dir}: ${e.message} (its last good contents stay)`);
      const last = d.networks.get(e.network);
      if (last && !networks.some((n) => n.name === e.network)) networks.push(last);
    }
    await this.apply(d, networks);
    return { networks: d.networks.size };
  }

  /** The aardvark-dns process of `dirPath` left (its connection closed): stop serving, unless another took over. */
  release(dirPath: string, pid: number): Promise<void> {
    return this.lock.run(async () => {
      const d = [...this.dirs.values()].find((x) => x.spec.dir === dirPath && x.spec.pid === pid);
      if (!d) return;
      await this.drop(d);
      this.log(`[podman] ${dirPath}: aardvark-dns pid ${pid} left; its listeners are closed`);
    });
  }

  list(): PodmanDirJson[] {
    return [...this.dirs.values()].map((d) => ({
      dir: d.spec.dir,
      port: d.spec.port,
      pid: d.spec.pid,
      netns: d.netns ?? 'daemon',
      networks: [...d.networks.values()].map((n) => ({ name: n.name, internal: n.internal, listen: n.listenIps, containers: n.containers.length })),
    }));
  }

  stats(): ResolverStats {
    return this.resolver.stats();
  }

  async close(): Promise<void> {
    await this.lock.run(async () => {
      for (const d of this.dirs.values()) {
        d.watcher?.close();
        d.onEnd('stopping');
      }
      this.dirs.clear();
    });
    await this.resolver.close();
  }

  private describe(d: Dir): string {
    return [...d.networks.values()].map((n) => `${n.name} (${n.listenIps.join(', ')}; ${n.containers.length} containers)`).join(', ') || 'no networks';
  }

  /** Make the resolver serve `networks` for `d`: new listeners bound first (a failure changes nothing), then names, then old listeners closed. */
  private async apply(d: Dir, networks: PodmanNetwork[]): Promise<void> {
    const port = d.spec.port;
    const wanted = new Map<string, string>();
    for (const n of networks) for (const ip of n.listenIps) if (!wanted.has(ip)) wanted.set(ip, n.name);
    const opened: { key: string; s: Sockets; ip: string }[] = [];
    try {
      for (const ip of wanted.keys()) {
        if (d.listeners.has(ip)) continue;
        const s = d.netns ? await bindIn(d.netns, ip, port) : await bindHere(ip, port);
        opened.push({ key: `${d.tag}|${ip}`, s, ip });
      }
    } catch (error) {
      for (const o of opened) (o.s.udp.close(), o.s.tcp.close());
      throw error;
    }

    // Names: every container once, with an endpoint per network it is on.
    const netKey = (name: string): string => `${d.tag}/${name}`;
    const byId = new Map<string, { names: string; endpoints: ResolverEndpoint[]; dns: string[]; netDns: string[]; external: boolean }>();
    const byIp = new Map<string, string>();
    for (const n of networks) {
      for (const c of n.containers) {
        const rid = `${d.tag}:${c.id}`;
        let r = byId.get(rid);
        if (!r) byId.set(rid, (r = { names: c.names[0]!, endpoints: [], dns: [], netDns: [], external: false }));
        const count = Math.max(c.ipv4.length, c.ipv6.length, 1);
        for (let i = 0; i < count; i++) r.endpoints.push({ network: netKey(n.name), ipv4: c.ipv4[i], ipv6: c.ipv6[i], aliases: c.names.slice(1) });
        if (!n.internal) {
          r.external = true;
          if (r.dns.length === 0) r.dns = c.dns;
          for (const s of n.dns) if (!r.netDns.includes(s)) r.netDns.push(s);
        }
        for (const ip of [...c.ipv4, ...c.ipv6]) byIp.set(normaliseAddress(ip), rid);
      }
    }
    for (const [rid, r] of byId) {
      const reg = {
        id: rid,
        name: r.names,
        hostname: '',
        endpoints: r.endpoints,
        links: [],
        // aardvark-dns's order: the container's own servers, else its networks', else the host's.
        dns: r.dns.length > 0 ? r.dns : r.netDns,
        forward: r.external,
        upstreamNetns: d.netns,
      };
      // A reload re-reads every file: only what changed is registered again (one container in, one out).
      const text = JSON.stringify(reg);
      if (d.containers.get(rid) === text) continue;
      d.containers.set(rid, text);
      this.resolver.upsert(reg);
    }
    for (const rid of d.containers.keys()) {
      if (byId.has(rid)) continue;
      this.resolver.remove(rid);
      d.containers.delete(rid);
    }
    const askers = new Set<string>();
    for (const n of networks) {
      const id = networkAsker(netKey(n.name));
      askers.add(id);
      this.resolver.upsertAsker(id, netKey(n.name), { dns: n.internal ? [] : n.dns, forward: !n.internal, upstreamNetns: d.netns });
    }
    for (const id of d.askers) if (!askers.has(id)) this.resolver.remove(id);
    d.askers = askers;
    d.byIp = byIp;
    d.networks = new Map(networks.map((n) => [n.name, n]));

    for (const o of opened) {
      const asker = networkAsker(netKey(wanted.get(o.ip)!));
      this.resolver.serveShared(o.key, o.s.udp, o.s.tcp, (source) => d.byIp.get(source) ?? asker);
      d.listeners.set(o.ip, wanted.get(o.ip)!);
    }
    for (const [ip] of d.listeners) {
      if (wanted.has(ip)) continue;
      d.listeners.delete(ip);
      await this.resolver.closeShared(`${d.tag}|${ip}`);
    }
  }

  private async drop(d: Dir): Promise<void> {
    if (this.dirs.get(d.key) === d) this.dirs.delete(d.key);
    d.watcher?.close();
    await Promise.all([...d.listeners.keys()].map((ip) => this.resolver.closeShared(`${d.tag}|${ip}`)));
    d.listeners.clear();
    for (const id of [...d.containers.keys(), ...d.askers]) this.resolver.remove(id);
    d.containers.clear();
    d.askers.clear();
    if (d.netns) await this.resolver.dropNetns(d.netns);
  }
}
