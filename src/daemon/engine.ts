// The daemon's core: the steps of every change (network create/rm, run, start, stop, rm, connect,
// disconnect), each persisted, applied to the kernel through the network's driver, mirrored in the
// resolver, and rolled back when a step fails. What the steps work out comes from plan.ts (pure); processes
// are the supervisor's; matching records against the kernel is reconcile.ts's.
import fs from 'node:fs';
import os from 'node:os';
import { DnsnetError, wrapError } from '../errors.js';
import type { ConnectSpec, ContainerJson, ExecSpec, InfoJson, Launch, NetworkCreateSpec, NetworkJson, RunResult, RunSpec } from '../api/types.js';
import { metricsText, resetSystem, systemInfo } from './system.js';
import { Resolver } from '../resolver/index.js';
import { PodmanDns } from './podman.js';
import { embeddedUpstreams, validateAlias } from '../resolvconf/index.js';
import { buildExecArgv } from '../netns/sandbox.js';
import { SpareNetns } from '../netns/spare.js';
import { paths, type Roots } from '../state/paths.js';
import { StateStore } from '../state/store.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord } from '../state/types.js';
import { clusterConfig } from '../cluster/config.js';
import { Cluster, type ClusterWorld } from './cluster.js';
import { Events } from './events.js';
import { hostHasIPv6, readHostResolv, type HostResolv } from './container-files.js';
import { driverFor, isPredefined, useCluster } from './drivers/index.js';
import { Published } from './published.js';
import { Images } from './images.js';
import { prepareImageRoot } from './rootfs.js';
import { containerJson, networkJson } from './json.js';
import { Mutex } from './mutex.js';
import { Sandboxes } from './sandboxes.js';
import { newId } from './names.js';
import {
  attachPlans,
  buildEnv,
  findContainer,
  findNetwork,
  firewall,
  joinTarget,
  launchFor,
  modeNetwork,
  nextIfIndex,
  planEndpoint,
  planRun,
  refuseModeChange,
  runWarnings,
  usesEmbeddedDns,
  type World,
} from './plan.js';
import { loadState, pruneSystem, recover } from './reconcile.js';
import { runningState, Supervisor } from './supervisor.js';
import { hasOwnRoot } from './proc.js';

/** How long an exec waits for a starting container's own root. */
const EXEC_ROOT_WAIT_MS = 5000;

const FOREGROUND_START_GRACE_MS = 30_000;

export type Log = (line: string) => void;

export class Engine implements World, ClusterWorld {
  readonly networks = new Map<string, NetworkRecord>();
  readonly containers = new Map<string, ContainerRecord>();
  readonly store: StateStore;
  readonly resolver: Resolver;
  readonly loIPv6 = hostHasIPv6();
  readonly hostName = os.hostname();
  host: HostResolv;
  private readonly lock = new Mutex();
  private readonly supervisor: Supervisor;
  private readonly spare = new SpareNetns();
  private readonly published: Published;
  readonly images: Images;
  readonly sandboxes: Sandboxes;
  /** Podman's networks, served in place of aardvark-dns (podman.ts). */
  readonly podman: PodmanDns;
  /** The cluster this host is in (--cluster-store), for overlay networks; none on a single host. */
  readonly cluster: Cluster | undefined;
  /** What happened (`dnsnet events`). */
  readonly events = new Events();
  readonly startedAt = new Date();
  /** Host resolv.conf reloads: how many, and how long each took (metrics). */
  readonly reloads = { count: 0, seconds: [] as number[] };

  constructor(
    readonly roots: Roots,
    readonly log: Log,
  ) {
    this.store = new StateStore(roots);
    this.resolver = new Resolver({ log: (line) => log(line) });
    this.podman = new PodmanDns(log);
    this.host = readHostResolv(roots);
    this.sandboxes = new Sandboxes(this, this.resolver, this.store, this.spare, log);
    this.published = new Published(this, log);
    this.images = new Images(roots.stateRoot, process.env.DNSNET_INSECURE_REGISTRIES, log);
    const cfg = clusterConfig(process.env);
    this.cluster = cfg ? new Cluster(cfg, this) : undefined;
    useCluster(this.cluster);
    this.supervisor = new Supervisor({
      containers: () => this.containers.values(),
      exited: (id, pid, exitCode, error) => this.containerExited(id, pid, exitCode, error),
      sandboxLost: (c) => this.lock.run(() => this.sandboxes.repair(c)),
      log,
    });
  }

  // ---------- start-up, shutdown, the host resolv.conf ----------

  async boot(): Promise<void> {
    this.resolver.setHostUpstreams(this.hostUpstreams());
    this.podman.setHostUpstreams(this.hostUpstreams());
    await loadState(this);
    await recover(this);
    await this.published.readopt();
    await this.published.sync(); // the networks and the ports, now that the containers are known
    this.spare.refill();
    this.supervisor.start();
    await this.cluster?.start();
  }

  async close(): Promise<void> {
    await this.cluster?.close();
    this.supervisor.close();
    this.published.close();
    this.spare.close();
    await Promise.all([this.resolver.close(), this.podman.close()]);
  }

  findImage(ref: string) {
    return this.images.store.tryFind(ref, { byPrefix: false });
  }

  imageFile(layers: string[], rel: string): string | undefined {
    return this.images.store.readFile(layers, rel);
  }

  imageLayerDir(digest: string): string {
    return this.images.store.layerDir(digest);
  }

  hostHosts(): string {
    try {
      return fs.readFileSync(this.roots.hostHosts, 'utf8');
    } catch {
      return '';
    }
  }

  /** The host's upstreams for the embedded resolver (resolvconf's rule: its nameservers, else the fallback). */
  private hostUpstreams(): string[] {
    return embeddedUpstreams(this.host.parsed, []).servers;
  }

  /** The host file (or systemd-resolved's) changed: new upstreams at once, then every container's file (in place). */
  async reloadHost(text: string, what = 'host resolv.conf'): Promise<void> {
    const t0 = process.hrtime.bigint();
    this.host = readHostResolv(this.roots, text);
    const upstreams = this.hostUpstreams();
    this.resolver.setHostUpstreams(upstreams);
    this.podman.setHostUpstreams(upstreams);
    this.log(`[watcher] ${what} changed: upstreams ${upstreams.join(', ')}`);
    await this.lock.run(() => this.sandboxes.followHost());
    this.reloads.count++;
    this.reloads.seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
    if (this.reloads.seconds.length > 1000) this.reloads.seconds.shift();
    this.events.emit('daemon', 'reload', String(process.pid), { file: what === 'host resolv.conf' ? this.roots.hostResolvConf : this.roots.systemdResolvConf, upstreams: upstreams.join(',') });
  }

  /** Events of a container's endpoints joining (run, start, connect) or leaving (exit, disconnect) their networks. */
  private endpointEvents(c: ContainerRecord, action: 'connect' | 'disconnect', eps: EndpointRecord[] = c.endpoints): void {
    for (const ep of eps) {
      const net = this.networks.get(ep.networkId);
      this.events.emit('network', action, ep.networkId, { name: ep.networkName, type: net?.driver ?? 'bridge', container: c.id }, net?.driver === 'overlay' ? 'global' : 'local');
    }
  }

  private containerEvent(c: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.events.emit('container', action, c.id, { name: c.name, image: c.image?.ref ?? c.cmd[0] ?? '', ...extra });
  }

  // ---------- networks ----------

  listNetworks(): NetworkJson[] {
    return [...this.networks.values()].sort((a, b) => a.created.localeCompare(b.created)).map((n) => this.networkJson(n));
  }

  inspectNetwork(ref: string): NetworkJson {
    return this.networkJson(findNetwork(this, ref));
  }

  private networkJson(n: NetworkRecord): NetworkJson {
    return networkJson(n, this.containers.values(), n.driver === 'overlay' ? this.cluster?.peers(n.id) : undefined);
  }

  createNetwork(spec: NetworkCreateSpec): Promise<NetworkJson> {
    return this.lock.run(async () => {
      let net: NetworkRecord;
      const driver = driverFor(spec.driver ?? 'bridge');
      try {
        net = await driver.plan(spec, [...this.networks.values()], this.host.parsed.nameservers);
      } catch (error) {
        throw wrapError(`create network ${spec.name}`, error);
      }
      try {
        await this.adoptNetwork(net);
      } catch (error) {
        // A global network is in the store already: take it out again, everywhere.
        if (driver.scope === 'global') await this.cluster?.removeNetwork(net).catch((e: unknown) => this.log(`[cluster] undo network ${net.name}: ${(e as Error).message}`));
        throw wrapError(`create network ${spec.name}`, error);
      }
      this.log(`[daemon] network ${net.name} created: ${net.ipam.map((c) => c.subnet).join(', ')} on ${net.device}`);
      this.events.emit('network', 'create', net.id, { name: net.name, type: net.driver }, driver.scope ?? 'local');
      return this.networkJson(net);
    });
  }

  /** Make `net`'s kernel objects and keep its record (a new network; an overlay network another host made). The lock is held. */
  async adoptNetwork(net: NetworkRecord): Promise<void> {
    const driver = driverFor(net);
    await driver.create(this.roots, net, firewall(this, [...this.networks.values(), net]));
    try {
      await this.store.saveNetwork(net);
    } catch (error) {
      await driver.remove(this.roots, net, firewall(this));
      throw error;
    }
    this.networks.set(net.id, net);
    if (driver.scope === 'global') this.log(`[cluster] overlay network ${net.name} here: ${net.ipam[0]?.subnet ?? ''}, VNI ${net.vni ?? 0}, on ${net.device}`);
  }

  /** Remove `net`'s kernel objects and its record (here only). The lock is held. */
  async dropNetwork(net: NetworkRecord): Promise<void> {
    const failures = await driverFor(net).remove(this.roots, net, firewall(this, [...this.networks.values()].filter((n) => n.id !== net.id)));
    await this.store.deleteNetwork(net.id);
    this.networks.delete(net.id);
    if (failures.length > 0) throw new DnsnetError('kernel', `remove network ${net.name}: ${failures.join('; ')}`);
  }

  async remakeNetwork(net: NetworkRecord): Promise<void> {
    await driverFor(net).create(this.roots, net, firewall(this));
  }

  locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.run(fn);
  }

  async endpointsChanged(c: ContainerRecord): Promise<void> {
    await this.sandboxes.endpointsChanged(c, { forgetIfLegacy: false });
    await this.published.endpointsChanged(c);
    await this.store.saveContainer(c);
  }

  removeNetwork(ref: string): Promise<void> {
    return this.lock.run(() => this.removeNetworkLocked(findNetwork(this, ref)));
  }

  private async removeNetworkLocked(net: NetworkRecord): Promise<void> {
    if (isPredefined(net)) throw new DnsnetError('invalid', `remove network ${net.name}: ${net.name} is a pre-defined network and cannot be removed`);
    const users = [...this.containers.values()].filter((c) => c.endpoints.some((ep) => ep.networkId === net.id));
    if (users.length > 0) throw new DnsnetError('conflict', `remove network ${net.name}: in use by container(s) ${users.map((c) => c.name).join(', ')}`);
    // A global network goes from the store first (refused while any host has a container on it), then from every host.
    if (driverFor(net).scope === 'global') {
      if (!this.cluster) throw new DnsnetError('invalid', `remove network ${net.name}: it is an overlay network and this daemon is in no cluster`);
      await this.cluster.removeNetwork(net);
    }
    await this.dropNetwork(net);
    this.events.emit('network', 'destroy', net.id, { name: net.name, type: net.driver }, driverFor(net).scope ?? 'local');
  }

  pruneNetworks(): Promise<string[]> {
    return this.lock.run(async () => {
      const deleted: string[] = [];
      for (const net of [...this.networks.values()]) {
        // Docker's prune leaves the cluster's (global) networks alone: `network rm` removes them.
        if (isPredefined(net) || driverFor(net).scope === 'global' || [...this.containers.values()].some((c) => c.endpoints.some((ep) => ep.networkId === net.id))) continue;
        await this.removeNetworkLocked(net);
        deleted.push(net.name);
      }
      return deleted;
    });
  }

  // ---------- containers: queries ----------

  findContainer(ref: string): ContainerRecord {
    return findContainer(this, ref);
  }

  listContainers(all: boolean): ContainerJson[] {
    return [...this.containers.values()]
      .filter((c) => all || c.state.status === 'running')
      .sort((a, b) => b.created.localeCompare(a.created))
      .map((c) => this.containerJson(c));
  }

  inspectContainer(ref: string): ContainerJson {
    return this.containerJson(this.findContainer(ref));
  }

  private containerJson(c: ContainerRecord): ContainerJson {
    return containerJson(this.roots, c, this.networks, usesEmbeddedDns(this, c) ? this.resolver.upstreamsFor(c.id) : []);
  }

  // ---------- containers: run, start ----------

  run(spec: RunSpec): Promise<RunResult> {
    return this.withSpareRefill(
      this.lock.run(async () => {
        const { record: c, net, target } = planRun(this, spec, newId(), (p) => fs.existsSync(p));
        // Allocate first, so a bad --ip fails before anything exists.
        const ep = net && driverFor(net).endpoints ? await this.newEndpoint(c, net, spec.networkAliases, spec.ip, 0) : undefined;
        if (ep) c.endpoints.push(ep);
        this.containers.set(c.id, c);
        try {
          await this.store.saveContainer(c); // a crash from here on is rolled back at the next start
          await this.published.hold(c);
          await this.sandboxes.build(c);
          await this.published.endpointsChanged(c);
          prepareImageRoot(this.roots, c);
          const launch = launchFor(this, c, spec.callerEnv);
          if (spec.detach) this.spawnDetached(c, launch);
          // Foreground: the CLI spawns it and reports; if it never does, do not keep the sandbox forever.
          else setTimeout(() => void this.abandonIfNotStarted(c.id), FOREGROUND_START_GRACE_MS).unref();
          await this.store.saveContainer(c);
          const where = ep ? `${ep.ipv4} on ${ep.networkName}` : target ? `in the network namespace of ${target.name}` : `network ${c.network}`;
          this.log(`[daemon] container ${c.name} ${spec.detach ? `started (pid ${c.state.pid})` : 'created'}: ${where}`);
          await this.sandboxes.refreshLinkers(c.name);
          this.containerEvent(c, 'create');
          this.endpointEvents(c, 'connect');
          if (spec.detach) this.containerEvent(c, 'start');
          const warnings = runWarnings(spec);
          return { id: c.id, name: c.name, ...(warnings.length > 0 ? { warnings } : {}), ...(spec.detach ? {} : { launch }) };
        } catch (error) {
          await this.rollbackRun(c);
          throw wrapError(`run ${c.name}`, error, 'kernel');
        }
      }),
    );
  }

  start(ref: string): Promise<RunResult> {
    return this.withSpareRefill(
      this.lock.run(async () => {
        const c = this.findContainer(ref);
        if (c.state.status === 'running') return { id: c.id, name: c.name };
        if (c.netContainer !== undefined) {
          c.hostname = joinTarget(this, c.netContainer, c.id).hostname; // Docker: named like the one it joins, now
        } else {
          const net = modeNetwork(this, c) ?? findNetwork(this, c.network);
          c.endpoints = driverFor(net).endpoints ? [await this.newEndpoint(c, net, c.networkAliases, c.requestedIp, 0)] : [];
        }
        c.state = { ...c.state, status: 'created', pid: 0 };
        try {
          await this.published.hold(c);
          await this.sandboxes.build(c);
          await this.published.endpointsChanged(c);
          prepareImageRoot(this.roots, c);
          this.spawnDetached(c, launchFor(this, c, undefined));
          c.detach = true;
          await this.store.saveContainer(c);
          await this.sandboxes.refreshLinkers(c.name);
          this.endpointEvents(c, 'connect');
          this.containerEvent(c, 'start');
          return { id: c.id, name: c.name };
        } catch (error) {
          await this.sandboxes.teardown(c);
          await this.published.release(c);
          c.endpoints = [];
          c.state = { ...c.state, status: 'exited' };
          await this.store.saveContainer(c).catch(() => undefined);
          throw wrapError(`start ${c.name}`, error, 'kernel');
        }
      }),
    );
  }

  /**
   * A new endpoint of `c` on `net`: a global network's address is claimed in the store first (let go of
   * again if planning fails); a local one's comes from the records.
   */
  private async newEndpoint(c: ContainerRecord, net: NetworkRecord, aliases: string[], ip: string | undefined, index: number): Promise<EndpointRecord> {
    const driver = driverFor(net);
    const claimed = driver.claim ? await driver.claim(c, net, ip) : undefined;
    try {
      return planEndpoint(this, c, net, aliases, ip, index, claimed);
    } catch (error) {
      if (claimed) await driver.release?.(c, { networkId: net.id, ipv4: claimed.ip, claim: claimed.revision } as EndpointRecord).catch(() => undefined);
      throw error;
    }
  }

  /** Once `op` is done (its answer on its way), start the spare netns for the next run. */
  private withSpareRefill<T>(op: Promise<T>): Promise<T> {
    const refill = () => void setImmediate(() => this.spare.refill());
    op.then(refill, refill);
    return op;
  }

  private async rollbackRun(c: ContainerRecord): Promise<void> {
    await this.sandboxes.teardown(c);
    await this.published.release(c);
    await this.store.deleteContainer(c.id).catch(() => undefined);
    this.containers.delete(c.id);
    await this.sandboxes.refreshLinkers(c.name);
  }

  private spawnDetached(c: ContainerRecord, launch: Launch): void {
    c.state = this.supervisor.spawn(c, launch.argv, launch.env, paths.logFile(this.roots, c.id));
  }

  // ---------- containers: exits ----------

  /** Foreground run: the CLI spawned the process and tells us its pid. */
  started(ref: string, pid: number): Promise<void> {
    return this.lock.run(async () => {
      const c = this.findContainer(ref);
      if (c.state.status !== 'created') return;
      c.state = runningState(pid);
      await this.store.saveContainer(c);
      this.containerEvent(c, 'start');
    });
  }

  /** Foreground run: the CLI saw its child end (or could not start it: it never ran, so nothing of it stays). */
  async exited(ref: string, exitCode: number): Promise<void> {
    const c = this.findContainer(ref);
    if (c.state.status === 'created') return this.lock.run(() => this.rollbackRun(c));
    await this.supervisor.exited(c.id, c.state.pid, exitCode);
  }

  private async abandonIfNotStarted(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (c?.state.status !== 'created') return;
    this.log(`[supervisor] ${c.name}: the CLI never started it; removing`);
    await this.lock.run(() => this.rollbackRun(c));
  }

  /** A container's process ended (the supervisor saw it, or the CLI said so): clean up once. */
  private async containerExited(id: string, pid: number, exitCode: number, error?: string): Promise<void> {
    await this.lock.run(async () => {
      const c = this.containers.get(id);
      if (!c || c.state.status !== 'running' || c.state.pid !== pid) return;
      await this.markExited(c, exitCode, error);
      this.log(`[supervisor] container ${c.name} exited with ${exitCode}`);
      if (c.autoRemove) {
        await this.store.deleteContainer(c.id);
        this.containers.delete(c.id);
        this.containerEvent(c, 'destroy');
      }
    });
  }

  async markExited(c: ContainerRecord, exitCode: number, error?: string): Promise<void> {
    const err = error ?? c.state.error;
    const state: ContainerRecord['state'] = {
      status: 'exited',
      pid: 0,
      exitCode,
      ...(c.state.startedAt ? { startedAt: c.state.startedAt } : {}),
      finishedAt: new Date().toISOString(),
      ...(err ? { error: err } : {}),
    };
    const wasRunning = c.state.status === 'running';
    await this.sandboxes.teardown(c);
    await this.published.release(c);
    if (wasRunning) {
      this.endpointEvents(c, 'disconnect');
      this.containerEvent(c, 'die', { exitCode: String(exitCode) });
    }
    // Only now: `inspect` and `ps` (which do not wait for the lock) say exited once the netns, veths
    // and names are gone, not while they are being removed.
    c.state = state;
    c.endpoints = []; // addresses released; `start` allocates again
    await this.store.saveContainer(c);
    await this.sandboxes.refreshLinkers(c.name);
  }

  // ---------- containers: stop, rm, exec, logs ----------

  async stop(ref: string, timeoutSec = 10): Promise<void> {
    const c = this.findContainer(ref);
    const wasRunning = c.state.status === 'running';
    await this.supervisor.stop(c, timeoutSec);
    if (wasRunning) this.containerEvent(c, 'stop');
  }

  async remove(ref: string, force: boolean): Promise<void> {
    const c = this.findContainer(ref);
    // A `run` or `start` may be under way for it: decide inside the lock, kill outside it.
    for (let attempt = 0; attempt < 5; attempt++) {
      if (c.state.status === 'running') {
        if (!force) throw new DnsnetError('conflict', `remove ${c.name}: the container is running: stop it first or use rm -f`);
        await this.supervisor.kill(c);
      }
      const removed = await this.lock.run(async () => {
        if (!this.containers.has(c.id)) return true;
        if (c.state.status === 'running') return false; // started while we waited for the lock
        await this.sandboxes.teardown(c);
        await this.store.deleteContainer(c.id);
        this.containers.delete(c.id);
        await this.sandboxes.refreshLinkers(c.name);
        this.containerEvent(c, 'destroy');
        return true;
      });
      if (removed) return;
    }
    throw new DnsnetError('conflict', `remove ${c.name}: it keeps being restarted`);
  }

  async exec(ref: string, spec: ExecSpec): Promise<Launch> {
    const c = this.findContainer(ref);
    if (c.state.status !== 'running') throw new DnsnetError('conflict', `exec in ${c.name}: the container is not running`);
    if (spec.workdir !== undefined && !spec.workdir.startsWith('/')) throw new DnsnetError('invalid', `exec: "${spec.workdir}" is not an absolute path`);
    // A container with a root of its own (an image, --rootfs) is in it only once its init has mounted it, a
    // moment after run / start answered: an exec before that would enter the host's root. Wait for it.
    if (c.image || (c.rootfs !== undefined && c.rootfs !== '/')) {
      const pid = c.state.pid;
      for (let t0 = Date.now(); hasOwnRoot(pid) === false && Date.now() - t0 < EXEC_ROOT_WAIT_MS; ) await new Promise((r) => setTimeout(r, 10));
      if (hasOwnRoot(pid) === false) throw new DnsnetError('conflict', `exec in ${c.name}: its root is not ready after ${EXEC_ROOT_WAIT_MS / 1000} s`);
    }
    return { argv: buildExecArgv(c.state.pid, spec.workdir ?? c.workdir, spec.cmd, c.image), env: buildEnv(c, spec.callerEnv, spec.env) };
  }

  logPath(ref: string): { id: string; path: string; running: () => boolean } {
    const c = this.findContainer(ref);
    if (!c.detach) throw new DnsnetError('invalid', `logs ${c.name}: the container was run in the foreground; its output went to the terminal`);
    return { id: c.id, path: paths.logFile(this.roots, c.id), running: () => this.containers.get(c.id)?.state.status === 'running' };
  }

  // ---------- network connect / disconnect ----------

  connect(netRef: string, spec: ConnectSpec): Promise<void> {
    return this.lock.run(async () => {
      const net = findNetwork(this, netRef);
      const c = this.findContainer(spec.container);
      refuseModeChange(this, c, net, 'connect');
      if (c.state.status !== 'running') throw new DnsnetError('conflict', `connect ${c.name} to ${net.name}: the container is not running`);
      if (c.endpoints.some((ep) => ep.networkId === net.id)) throw new DnsnetError('conflict', `connect ${c.name} to ${net.name}: already connected`);
      if (net.isDefault && spec.aliases.length > 0) throw new DnsnetError('invalid', `connect ${c.name}: network-scoped aliases are only supported for user-defined networks`);
      for (const a of spec.aliases) validateAlias(a, '--alias');
      const ep = await this.newEndpoint(c, net, spec.aliases, spec.ip, nextIfIndex(c));
      const driver = driverFor(net);
      c.endpoints.push(ep);
      try {
        await driver.join(attachPlans(this, c, [ep], 1)[0]!);
        await this.sandboxes.announce(c, [ep]);
        await this.endpointsChanged(c);
        this.endpointEvents(c, 'connect', [ep]);
      } catch (error) {
        c.endpoints = c.endpoints.filter((e) => e !== ep);
        await this.sandboxes.leave(c, ep);
        throw wrapError(`connect ${c.name} to ${net.name}`, error, 'kernel');
      }
    });
  }

  disconnect(netRef: string, ctrRef: string): Promise<void> {
    return this.lock.run(async () => {
      const net = findNetwork(this, netRef);
      const c = this.findContainer(ctrRef);
      refuseModeChange(this, c, net, 'disconnect');
      const ep = c.endpoints.find((e) => e.networkId === net.id);
      if (!ep) throw new DnsnetError('conflict', `disconnect ${c.name} from ${net.name}: not connected`);
      c.endpoints = c.endpoints.filter((e) => e !== ep);
      if (c.state.status === 'running') {
        await this.sandboxes.leave(c, ep);
        await this.sandboxes.endpointsChanged(c, { forgetIfLegacy: false });
        await this.published.endpointsChanged(c);
      }
      await this.store.saveContainer(c);
      this.endpointEvents(c, 'disconnect', [ep]);
    });
  }

  // ---------- images ----------

  /** `rmi`: refused while a container (any state) was made from the image, as Docker does. */
  removeImage(ref: string, force: boolean) {
    return this.images.remove(ref, force, (id) => this.containersOfImage(id));
  }

  pruneImages(all: boolean) {
    return this.images.prune(all, (id) => this.containersOfImage(id));
  }

  private containersOfImage(id: string): string[] {
    return [...this.containers.values()].filter((c) => c.image?.id === id).map((c) => c.id);
  }

  // ---------- system ----------

  /** Set by the daemon's main: stop the daemon (after `system reset`, also removing its state root and run dir). */
  stopDaemon: ((why: string, opts: { removeRoots: boolean }) => void) | undefined;
  /** The TCP address /metrics is also served on (--metrics-addr), for `system info`. */
  metricsAddr: string | undefined;

  info(): InfoJson {
    return systemInfo(this, this.metricsAddr);
  }

  metrics(): string {
    return metricsText(this);
  }

  /** `system reset`: everything of this state root goes, then the daemon stops and removes the root. */
  async reset(): Promise<{ removed: string[] }> {
    const removed = await resetSystem(this);
    this.log(`[daemon] system reset: ${removed.length} object(s) removed; stopping`);
    setImmediate(() => this.stopDaemon?.('system reset', { removeRoots: true }));
    return { removed };
  }

  /** Remove kernel objects that look like this root's but that no record owns (dead state). */
  systemPrune(): Promise<string[]> {
    return this.lock.run(() => pruneSystem(this));
  }
}
