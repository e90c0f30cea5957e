// The daemon's core: networks and containers in memory, every change persisted and applied to the
// kernel, the resolver kept in step, and rollback when a step fails.
import fs from 'node:fs';
import { DnsnetError, wrapError } from '../errors.js';
import { allocateAddress, macFor } from '../ipam/index.js';
import { Resolver, type ResolverRegistration } from '../resolver/index.js';
import { openResolverSockets } from '../netns/resolver-sockets.js';
import { embeddedUpstreams, isLoopback, parseDnsServer, validateAlias, validateDnsOption, validateDnsSearch, validateHostname, parseAddHost } from '../resolvconf/index.js';
import { formatLink, parseLink, type Link } from './links.js';
import { addEndpoint, attachNetnsWithEndpoints, buildExecArgv, buildLaunchArgv, deleteLink, deleteNetns, killNetnsProcesses, type EndpointPlan } from '../netns/sandbox.js';
import { discardSpare, SpareNetns } from '../netns/spare.js';
import { netnsName, netnsPath, ownerTag, vethName } from '../state/kernel-names.js';
import { paths, type Roots } from '../state/paths.js';
import { StateStore } from '../state/store.js';
import { SCHEMA_VERSION, type ContainerRecord, type EndpointRecord, type NetworkRecord } from '../state/types.js';
import type { ConnectSpec, ContainerJson, ExecSpec, Launch, NetworkCreateSpec, NetworkJson, RunResult, RunSpec } from '../api/types.js';
import {
  containerHosts,
  containerResolvConf,
  hostHasIPv6,
  readHostResolv,
  rewriteHosts,
  rewriteResolvConf,
  usesEmbeddedDns,
  writeContainerFiles,
  type HostResolv,
  type LinkTarget,
} from './container-files.js';
import { containerJson, networkJson } from './json.js';
import { Mutex } from './mutex.js';
import { findByRef, generateName, newId, validateName } from './names.js';
import { DEFAULT_NETWORK, planNetwork, realizeNetwork, unrealizeNetwork } from './networks.js';
import { loadState, pruneSystem, recover } from './reconcile.js';
import { runningState, signal, Supervisor } from './supervisor.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const FOREGROUND_START_GRACE_MS = 30_000;

export type Log = (line: string) => void;

export class Engine {
  readonly networks = new Map<string, NetworkRecord>();
  readonly containers = new Map<string, ContainerRecord>();
  readonly store: StateStore;
  readonly resolver: Resolver;
  private readonly lock = new Mutex();
  host: HostResolv;
  private readonly supervisor: Supervisor;
  private readonly loIPv6 = hostHasIPv6();
  private readonly spare = new SpareNetns();

  constructor(
    readonly roots: Roots,
    readonly log: Log,
  ) {
    this.store = new StateStore(roots);
    this.resolver = new Resolver({ log: (line) => log(line) });
    this.host = readHostResolv(roots);
    this.supervisor = new Supervisor({
      containers: () => this.containers.values(),
      exited: (id, pid, exitCode, error) => this.containerExited(id, pid, exitCode, error),
      sandboxLost: (c) => this.lock.run(() => this.repairSandbox(c)),
      log,
    });
  }

  // ---------- start-up and shutdown ----------

  async boot(): Promise<void> {
    this.resolver.setHostUpstreams(this.hostUpstreams());
    await loadState(this);
    await recover(this);
    this.spare.refill();
    this.supervisor.start();
  }

  async close(): Promise<void> {
    this.supervisor.close();
    this.spare.close();
    await this.resolver.close();
  }

  // ---------- host resolv.conf ----------

  /** The host's upstreams for the embedded resolver (resolvconf's rule: its nameservers, else the fallback). */
  private hostUpstreams(): string[] {
    return embeddedUpstreams(this.host.parsed, []).servers;
  }

  /** The host file changed: new upstreams at once, then every container's file (in place). */
  async reloadHost(text: string, what = 'host resolv.conf'): Promise<void> {
    this.host = readHostResolv(this.roots, text);
    this.resolver.setHostUpstreams(this.hostUpstreams());
    this.log(`[watcher] ${what} changed: upstreams ${this.hostUpstreams().join(', ')}`);
    await this.lock.run(async () => {
      for (const c of this.containers.values()) {
        if (c.state.status !== 'running') continue;
        const gen = containerResolvConf(c, this.networks, this.host);
        const before = c.resolvConfEdited;
        await rewriteResolvConf(this.roots, c, gen.text).catch((e: unknown) => this.log(`[watcher] rewrite ${c.name}: ${(e as Error).message}`));
        if (c.resolvConfEdited && !before) this.log(`[watcher] ${c.name}: /etc/resolv.conf was edited inside the container; left alone`);
        await this.store.saveContainer(c);
      }
    });
  }

  // ---------- networks ----------

  listNetworks(): NetworkJson[] {
    return [...this.networks.values()]
      .sort((a, b) => a.created.localeCompare(b.created))
      .map((n) => networkJson(n, this.containers.values()));
  }

  inspectNetwork(ref: string): NetworkJson {
    return networkJson(this.findNetwork(ref), this.containers.values());
  }

  findNetwork(ref: string): NetworkRecord {
    return findByRef(this.networks.values(), ref, 'network');
  }

  createNetwork(spec: NetworkCreateSpec): Promise<NetworkJson> {
    return this.lock.run(async () => {
      let net: NetworkRecord;
      try {
        net = await planNetwork(spec, [...this.networks.values()], this.host.parsed.nameservers);
      } catch (error) {
        throw wrapError(`create network ${spec.name}`, error);
      }
      await realizeNetwork(this.roots, net, [...this.networks.values(), net]);
      try {
        await this.store.saveNetwork(net);
      } catch (error) {
        await unrealizeNetwork(this.roots, net, [...this.networks.values()]);
        throw wrapError(`create network ${spec.name}`, error);
      }
      this.networks.set(net.id, net);
      this.log(`[daemon] network ${net.name} created: ${net.ipam.map((c) => c.subnet).join(', ')} on ${net.device}`);
      return networkJson(net, []);
    });
  }

  removeNetwork(ref: string): Promise<void> {
    return this.lock.run(async () => {
      const net = this.findNetwork(ref);
      await this.removeNetworkLocked(net);
    });
  }

  private async removeNetworkLocked(net: NetworkRecord): Promise<void> {
    if (net.isDefault) throw new DnsnetError('invalid', `remove network ${net.name}: it is the pre-defined default network and cannot be removed`);
    const users = [...this.containers.values()].filter((c) => c.endpoints.some((ep) => ep.networkId === net.id));
    if (users.length > 0) {
      throw new DnsnetError('conflict', `remove network ${net.name}: in use by container(s) ${users.map((c) => c.name).join(', ')}`);
    }
    const remaining = [...this.networks.values()].filter((n) => n.id !== net.id);
    const failures = await unrealizeNetwork(this.roots, net, remaining);
    await this.store.deleteNetwork(net.id);
    this.networks.delete(net.id);
    if (failures.length > 0) throw new DnsnetError('kernel', `remove network ${net.name}: ${failures.join('; ')}`);
  }

  pruneNetworks(): Promise<string[]> {
    return this.lock.run(async () => {
      const deleted: string[] = [];
      for (const net of [...this.networks.values()]) {
        if (net.isDefault) continue;
        if ([...this.containers.values()].some((c) => c.endpoints.some((ep) => ep.networkId === net.id))) continue;
        await this.removeNetworkLocked(net);
        deleted.push(net.name);
      }
      return deleted;
    });
  }

  // ---------- containers: queries ----------

  findContainer(ref: string): ContainerRecord {
    return findByRef(this.containers.values(), ref, 'container');
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
    const upstreams = usesEmbeddedDns(c, this.networks) ? this.resolver.upstreamsFor(c.id) : [];
    return containerJson(this.roots, c, this.networks, upstreams);
  }

  // ---------- containers: run ----------

  /** Validate everything a run asks for before anything changes. */
  private validateRun(spec: RunSpec): { net: NetworkRecord; name: string; links: Link[] } {
    if (spec.cmd.length === 0) throw new DnsnetError('invalid', 'run: no command given');
    const name = spec.name ?? generateName((n) => this.nameTaken(n));
    validateName('container', name);
    if (this.nameTaken(name)) throw new DnsnetError('conflict', `run: the container name "${name}" is already in use`);
    const net = this.findNetwork(spec.network ?? DEFAULT_NETWORK);
    if (spec.hostname !== undefined) validateHostname(spec.hostname);
    if (net.isDefault && spec.networkAliases.length > 0) {
      throw new DnsnetError('invalid', 'run: network-scoped aliases are only supported for user-defined networks');
    }
    for (const a of spec.networkAliases) validateAlias(a, '--network-alias');
    for (const d of spec.dns) parseDnsServer(d);
    for (const d of spec.dnsSearch) validateDnsSearch(d);
    for (const o of spec.dnsOptions) validateDnsOption(o);
    for (const h of spec.extraHosts) parseAddHost(h, this.defaultGateway());
    const links = spec.links.map((l) => this.checkLink(l, net));
    if (spec.workdir !== undefined && !spec.workdir.startsWith('/')) {
      throw new DnsnetError('invalid', `run: the working directory "${spec.workdir}" is not an absolute path`);
    }
    if (spec.rootfs !== undefined) {
      if (!spec.rootfs.startsWith('/')) throw new DnsnetError('invalid', `run: --rootfs "${spec.rootfs}" is not an absolute path`);
      for (const f of ['etc/hosts', 'etc/resolv.conf']) {
        if (!fs.existsSync(`${spec.rootfs}/${f}`)) throw new DnsnetError('invalid', `run: --rootfs ${spec.rootfs} has no /${f} to bind-mount over`);
      }
    }
    for (const e of spec.env) {
      if (e === '' || e.startsWith('=')) throw new DnsnetError('invalid', `run: invalid environment variable "${e}"`);
    }
    return { net, name, links };
  }

  private nameTaken(name: string): boolean {
    for (const c of this.containers.values()) if (c.name === name) return true;
    return false;
  }

  private defaultGateway(): string | undefined {
    for (const n of this.networks.values()) if (n.isDefault) return n.ipam[0]?.gateway;
    return undefined;
  }

  /**
   * `--link NAME[:ALIAS]`, as Docker takes it. On the default network the target must be a running container
   * there (its address goes into /etc/hosts now). On a user-defined network it may not exist yet: the alias
   * resolves once a container of that name joins a network the two share.
   */
  private checkLink(text: string, net: NetworkRecord): Link {
    const link = parseLink(text);
    if (link.target === '' || link.alias === '') throw new DnsnetError('invalid', `run: invalid --link "${text}": expected NAME[:ALIAS]`);
    validateAlias(link.alias, '--link');
    const target = this.tryFind(link.target);
    if (!net.isDefault) {
      if (!target) validateName('container', link.target);
      return { target: target?.name ?? link.target, alias: link.alias };
    }
    if (!target) throw new DnsnetError('invalid', `run: --link ${text}: no such container: ${link.target}`);
    if (target.state.status !== 'running') throw new DnsnetError('invalid', `run: --link ${text}: container ${target.name} is not running`);
    if (!target.endpoints.some((ep) => ep.networkId === net.id)) {
      throw new DnsnetError('invalid', `run: --link ${text}: container ${target.name} is not on network ${net.name}`);
    }
    return { target: target.name, alias: link.alias };
  }

  private buildEnv(c: ContainerRecord, callerEnv: Record<string, string> | undefined, extra: string[]): Record<string, string> {
    const env: Record<string, string> = { PATH: DEFAULT_PATH, HOSTNAME: c.hostname, HOME: '/root' };
    if (callerEnv?.TERM) env.TERM = callerEnv.TERM;
    for (const e of [...c.env, ...extra]) {
      const i = e.indexOf('=');
      if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
      else if (callerEnv?.[e] !== undefined) env[e] = callerEnv[e];
    }
    return env;
  }

  run(spec: RunSpec): Promise<RunResult> {
    return this.withSpareRefill(this.lock.run(async () => {
      const { net, name, links } = this.validateRun(spec);
      const id = newId();
      const env = spec.env.map((e) => (e.includes('=') ? e : spec.callerEnv?.[e] !== undefined ? `${e}=${spec.callerEnv[e]}` : e)).filter((e) => e.includes('='));
      const c: ContainerRecord = {
        schema: SCHEMA_VERSION,
        id,
        name,
        created: new Date().toISOString(),
        hostname: spec.hostname ?? id.slice(0, 12),
        domainname: '',
        cmd: spec.cmd,
        env,
        workdir: spec.workdir ?? '/',
        ...(spec.rootfs ? { rootfs: spec.rootfs } : {}),
        detach: spec.detach,
        autoRemove: spec.autoRemove,
        network: net.name,
        ...(spec.ip ? { requestedIp: spec.ip } : {}),
        networkAliases: spec.networkAliases,
        links: links.map(formatLink),
        extraHosts: spec.extraHosts,
        dns: spec.dns,
        dnsSearch: spec.dnsSearch,
        dnsOptions: spec.dnsOptions,
        state: { status: 'created', pid: 0, exitCode: 0 },
        endpoints: [],
        files: {},
      };
      // Allocate first (pure), so a bad --ip fails before anything exists.
      const ep = this.planEndpoint(c, net, spec.networkAliases, spec.ip, 0);
      c.endpoints.push(ep);
      this.containers.set(c.id, c);
      try {
        await this.store.saveContainer(c); // a crash from here on is rolled back at the next start
        await this.buildSandbox(c);
        const launch = this.launchFor(c, spec.callerEnv);
        if (spec.detach) {
          this.spawnDetached(c, launch);
        } else {
          // The CLI spawns it and reports; if it never does, do not keep the sandbox forever.
          setTimeout(() => void this.abandonIfNotStarted(c.id), FOREGROUND_START_GRACE_MS).unref();
        }
        await this.store.saveContainer(c);
        this.log(`[daemon] container ${c.name} ${spec.detach ? `started (pid ${c.state.pid})` : 'created'}: ${ep.ipv4} on ${net.name}`);
        await this.refreshLinkers(c.name);
        const warnings = runWarnings(spec);
        return { id: c.id, name: c.name, ...(warnings.length > 0 ? { warnings } : {}), ...(spec.detach ? {} : { launch }) };
      } catch (error) {
        await this.rollbackRun(c);
        throw wrapError(`run ${name}`, error, 'kernel');
      }
    }));
  }

  /** Once `op` is done (its answer on its way), start the spare netns for the next run. */
  private withSpareRefill<T>(op: Promise<T>): Promise<T> {
    const refill = () => void setImmediate(() => this.spare.refill());
    op.then(refill, refill);
    return op;
  }

  private async rollbackRun(c: ContainerRecord): Promise<void> {
    await this.teardownSandbox(c);
    await this.store.deleteContainer(c.id).catch(() => undefined);
    this.containers.delete(c.id);
    await this.refreshLinkers(c.name);
  }

  private planEndpoint(c: ContainerRecord, net: NetworkRecord, aliases: string[], ip: string | undefined, index: number): EndpointRecord {
    const used = this.usedAddresses(net.id);
    const v4 = net.ipam.find((x) => !x.subnet.includes(':'));
    const v6 = net.ipam.find((x) => x.subnet.includes(':'));
    if (!v4) throw new DnsnetError('internal', `network ${net.name} has no IPv4 subnet`);
    const wantV6 = ip?.includes(':');
    // An IPv6 --ip on a network without an IPv6 subnet would otherwise be ignored silently.
    if (wantV6 && !v6) throw new DnsnetError('invalid', `address ${ip} is IPv6, but network ${net.name} has no IPv6 subnet`);
    const ipv4 = allocateAddress(v4, used, wantV6 ? undefined : ip);
    const ipv6 = v6 ? allocateAddress(v6, used, wantV6 ? ip : undefined) : undefined;
    return {
      networkId: net.id,
      networkName: net.name,
      ifname: `eth${index}`,
      hostVeth: vethName(c.id, net.id),
      mac: macFor(ipv4),
      ipv4,
      ...(ipv6 ? { ipv6, prefixLen6: Number(v6?.subnet.split('/')[1]), gateway6: v6?.gateway } : {}),
      prefixLen: Number(v4.subnet.split('/')[1]),
      gateway: v4.gateway,
      aliases,
      ...(ip ? { requestedIp: ip } : {}),
    };
  }

  private usedAddresses(networkId: string): Set<string> {
    const used = new Set<string>();
    for (const c of this.containers.values()) {
      for (const ep of c.endpoints) {
        if (ep.networkId !== networkId) continue;
        used.add(ep.ipv4);
        if (ep.ipv6) used.add(ep.ipv6);
      }
    }
    return used;
  }

  private endpointPlan(c: ContainerRecord, ep: EndpointRecord, withGateway: boolean): EndpointPlan {
    const net = this.networks.get(ep.networkId);
    if (!net) throw new DnsnetError('not-found', `network ${ep.networkName} no longer exists`);
    return {
      netns: netnsName(c.id),
      owner: ownerTag(this.roots.stateRoot),
      hostVeth: ep.hostVeth,
      ifname: ep.ifname,
      bridge: net.device,
      mtu: net.mtu,
      mac: ep.mac,
      ipv4: ep.ipv4,
      prefixLen: ep.prefixLen,
      ...(ep.ipv6 ? { ipv6: ep.ipv6, prefixLen6: ep.prefixLen6 ?? 64 } : {}),
      ...(withGateway && !net.internal ? { gateway: ep.gateway, ...(ep.gateway6 ? { gateway6: ep.gateway6 } : {}) } : {}),
    };
  }

  /**
   * netns + endpoints + files + resolver sockets and names. The caller rolls back on failure.
   * The netns is a spare's (netns/spare.ts: made, `lo` up, sockets bound, all before this run): the
   * `ip` batch that adds the first veth names it, and its sockets go to the resolver.
   */
  private async buildSandbox(c: ContainerRecord): Promise<void> {
    const spare = await this.spare.take();
    let handed = false;
    try {
      const resolv = containerResolvConf(c, this.networks, this.host);
      // The files do not depend on the kernel objects: written while ip works. Both are awaited before
      // anything is thrown, so a rollback never races a write into the directory it removes.
      const [files, kernel] = await Promise.allSettled([
        writeContainerFiles(this.roots, c, this.hostsText(c), resolv.text),
        attachNetnsWithEndpoints(
          netnsName(c.id),
          spare.helper.pid,
          c.endpoints.map((ep, i) => this.endpointPlan(c, ep, i === 0)),
          spare.ip,
        ),
      ]);
      if (kernel.status === 'rejected') throw kernel.reason;
      if (files.status === 'rejected') throw files.reason;
      if (usesEmbeddedDns(c, this.networks)) {
        this.resolver.upsert(this.resolverView(c));
        this.resolver.attach(c.id, spare.sockets.udp, spare.sockets.tcp);
        handed = true;
      }
    } finally {
      discardSpare(spare, handed); // its netns, once named, outlives the helper
    }
  }

  private hostsText(c: ContainerRecord): string {
    return containerHosts(c, this.loIPv6, this.defaultGateway(), this.defaultNetworkLinks(c));
  }

  /** `--link` on the default network becomes hosts lines: IP ALIAS HOSTNAME NAME. */
  private defaultNetworkLinks(c: ContainerRecord): LinkTarget[] {
    const out: LinkTarget[] = [];
    for (const ep of c.endpoints) {
      const net = this.networks.get(ep.networkId);
      if (!net?.isDefault) continue;
      for (const l of c.links) {
        const link = parseLink(l);
        const target = this.tryFind(link.target);
        const tep = target?.endpoints.find((e) => e.networkId === net.id);
        if (!target || !tep) continue;
        out.push({ ip: tep.ipv4, alias: link.alias, hostname: target.hostname, name: target.name });
      }
    }
    return out;
  }

  private tryFind(ref: string): ContainerRecord | undefined {
    try {
      return this.findContainer(ref);
    } catch {
      return undefined;
    }
  }

  private resolverView(c: ContainerRecord): ResolverRegistration {
    const own = embeddedUpstreams(this.host.parsed, c.dns);
    const user = c.endpoints.filter((ep) => !(this.networks.get(ep.networkId)?.isDefault ?? true));
    return {
      id: c.id,
      name: c.name,
      hostname: c.hostname,
      endpoints: user.map((ep) => ({ network: ep.networkName, ipv4: ep.ipv4, ...(ep.ipv6 ? { ipv6: ep.ipv6 } : {}), aliases: ep.aliases })),
      // By name: a target that does not exist yet resolves once it joins (the record store follows names).
      links: c.links.map(parseLink),
      // resolvconf's rule: --dns servers, dialled from the container's own netns (so an --internal network can
      // still reach a DNS server container on it); else the host's (setHostUpstreams), only when a network leads out.
      dns: own.fromContainer ? own.servers : [],
      dnsNetns: netnsPath(c.id),
      forward: user.some((ep) => !(this.networks.get(ep.networkId)?.internal ?? false)),
    };
  }

  /** Names in the resolver, and sockets bound in the container's netns (re-adoption). */
  async registerDns(c: ContainerRecord): Promise<void> {
    this.resolver.upsert(this.resolverView(c));
    if (usesEmbeddedDns(c, this.networks)) {
      const { udp, tcp } = await openResolverSockets(netnsPath(c.id));
      this.resolver.attach(c.id, udp, tcp);
    }
  }

  private launchFor(c: ContainerRecord, callerEnv: Record<string, string> | undefined): Launch {
    return {
      argv: buildLaunchArgv({
        netnsPath: netnsPath(c.id),
        hostsFile: paths.hostsFile(this.roots, c.id),
        hostnameFile: paths.hostnameFile(this.roots, c.id),
        resolvConfFile: paths.resolvConfFile(this.roots, c.id),
        hostname: c.hostname,
        workdir: c.workdir,
        ...(c.rootfs ? { rootfs: c.rootfs } : {}),
        cmd: c.cmd,
      }),
      env: this.buildEnv(c, callerEnv, []),
    };
  }

  private spawnDetached(c: ContainerRecord, launch: Launch): void {
    c.state = this.supervisor.spawn(c, launch.argv, launch.env, paths.logFile(this.roots, c.id));
  }

  /** Foreground run: the CLI spawned the process and tells us its pid. */
  started(ref: string, pid: number): Promise<void> {
    return this.lock.run(async () => {
      const c = this.findContainer(ref);
      if (c.state.status !== 'created') return;
      c.state = runningState(pid);
      await this.store.saveContainer(c);
    });
  }

  /** Foreground run: the CLI saw its child end. */
  async exited(ref: string, exitCode: number): Promise<void> {
    const c = this.findContainer(ref);
    if (c.state.status === 'created') {
      // The CLI could not start it at all: it never ran, so nothing of it stays.
      await this.lock.run(() => this.rollbackRun(c));
      return;
    }
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
      }
    });
  }

  async markExited(c: ContainerRecord, exitCode: number, error?: string): Promise<void> {
    const state: ContainerRecord['state'] = {
      status: 'exited',
      pid: 0,
      exitCode,
      ...(c.state.startedAt ? { startedAt: c.state.startedAt } : {}),
      finishedAt: new Date().toISOString(),
      ...((error ?? c.state.error) ? { error: error ?? c.state.error } : {}),
    };
    await this.teardownSandbox(c);
    // Only now: `inspect` and `ps` (which do not wait for the lock) say exited once the netns, veths
    // and names are gone, not while they are being removed.
    c.state = state;
    c.endpoints = []; // addresses released; `start` allocates again
    await this.store.saveContainer(c);
    await this.refreshLinkers(c.name);
  }

  /** Remove the resolver's names and sockets, the veths and the netns. Keeps going on failure. */
  async teardownSandbox(c: ContainerRecord): Promise<void> {
    this.resolver.remove(c.id);
    await this.resolver.detach(c.id).catch((e: unknown) => this.log(`[daemon] close sockets of ${c.name}: ${(e as Error).message}`));
    for (const ep of c.endpoints) {
      await deleteLink(ep.hostVeth).catch((e: unknown) => this.log(`[daemon] delete ${ep.hostVeth}: ${(e as Error).message}`));
    }
    const strays = await killNetnsProcesses(netnsName(c.id)).catch(() => 0);
    if (strays > 0) this.log(`[daemon] container ${c.name}: killed ${strays} process(es) left in its netns`);
    await deleteNetns(netnsName(c.id)).catch((e: unknown) => this.log(`[daemon] delete netns of ${c.name}: ${(e as Error).message}`));
  }

  /**
   * The container `name` joined, left or went away: the containers linking to it follow. On a user network
   * the resolver answers the alias with its addresses now; on the default network the linker's /etc/hosts
   * lines are rewritten (Docker rewrites them when the target comes back with a new address; dnsnet also
   * takes them out while it is gone, so the old address, maybe another container's by then, is never used).
   */
  private async refreshLinkers(name: string): Promise<void> {
    for (const other of [...this.containers.values()]) {
      if (other.state.status !== 'running' || !other.links.some((l) => parseLink(l).target === name)) continue;
      try {
        if (usesEmbeddedDns(other, this.networks)) this.resolver.upsert(this.resolverView(other));
        else {
          await rewriteHosts(this.roots, other, this.hostsText(other));
          await this.store.saveContainer(other);
        }
      } catch (error) {
        // The target's own change stands: a linker that could not follow is logged, not rolled back.
        this.log(`[daemon] ${other.name}, linking to ${name}: ${(error as Error).message}`);
      }
    }
  }

  /** A netns or veth was deleted outside dnsnet: a lost netns stops the container, a lost veth ends that endpoint. */
  private async repairSandbox(c: ContainerRecord): Promise<void> {
    if (c.state.status !== 'running' || this.containers.get(c.id) !== c) return; // changed while we waited for the lock
    if (!fs.existsSync(netnsPath(c.id))) {
      this.log(`[supervisor] container ${c.name}: its network namespace was deleted outside dnsnet; stopping it`);
      c.state.error = 'its network namespace was deleted outside dnsnet';
      signal(c.state.pid, 'SIGKILL'); // the exit is then seen by the child's exit event or the next poll
      return;
    }
    const lost = c.endpoints.filter((ep) => !fs.existsSync(`/sys/class/net/${ep.hostVeth}`));
    if (lost.length === 0) return;
    for (const ep of lost) this.log(`[supervisor] container ${c.name}: veth ${ep.hostVeth} (network ${ep.networkName}) was deleted outside dnsnet; disconnecting`);
    c.endpoints = c.endpoints.filter((ep) => !lost.includes(ep));
    await rewriteHosts(this.roots, c, this.hostsText(c)).catch((e: unknown) => this.log(`[supervisor] rewrite hosts of ${c.name}: ${(e as Error).message}`));
    if (usesEmbeddedDns(c, this.networks)) this.resolver.upsert(this.resolverView(c));
    else this.resolver.remove(c.id);
    await this.store.saveContainer(c);
  }

  // ---------- containers: stop, start, rm, exec, logs ----------

  async stop(ref: string, timeoutSec = 10): Promise<void> {
    await this.supervisor.stop(this.findContainer(ref), timeoutSec);
  }

  start(ref: string): Promise<RunResult> {
    return this.withSpareRefill(this.lock.run(async () => {
      const c = this.findContainer(ref);
      if (c.state.status === 'running') return { id: c.id, name: c.name };
      const net = this.findNetwork(c.network);
      c.endpoints = [this.planEndpoint(c, net, c.networkAliases, c.requestedIp, 0)];
      c.state = { ...c.state, status: 'created', pid: 0 };
      try {
        await this.buildSandbox(c);
        this.spawnDetached(c, this.launchFor(c, undefined));
        c.detach = true;
        await this.store.saveContainer(c);
        await this.refreshLinkers(c.name);
        return { id: c.id, name: c.name };
      } catch (error) {
        await this.teardownSandbox(c);
        c.endpoints = [];
        c.state = { ...c.state, status: 'exited' };
        await this.store.saveContainer(c).catch(() => undefined);
        throw wrapError(`start ${c.name}`, error, 'kernel');
      }
    }));
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
        await this.teardownSandbox(c);
        await this.store.deleteContainer(c.id);
        this.containers.delete(c.id);
        await this.refreshLinkers(c.name);
        return true;
      });
      if (removed) return;
    }
    throw new DnsnetError('conflict', `remove ${c.name}: it keeps being restarted`);
  }

  exec(ref: string, spec: ExecSpec): Launch {
    const c = this.findContainer(ref);
    if (c.state.status !== 'running') throw new DnsnetError('conflict', `exec in ${c.name}: the container is not running`);
    if (spec.workdir !== undefined && !spec.workdir.startsWith('/')) throw new DnsnetError('invalid', `exec: "${spec.workdir}" is not an absolute path`);
    return { argv: buildExecArgv(c.state.pid, spec.workdir ?? c.workdir, spec.cmd), env: this.buildEnv(c, spec.callerEnv, spec.env) };
  }

  logPath(ref: string): { id: string; path: string; running: () => boolean } {
    const c = this.findContainer(ref);
    if (!c.detach) throw new DnsnetError('invalid', `logs ${c.name}: the container was run in the foreground; its output went to the terminal`);
    return { id: c.id, path: paths.logFile(this.roots, c.id), running: () => this.containers.get(c.id)?.state.status === 'running' };
  }

  // ---------- network connect / disconnect ----------

  connect(netRef: string, spec: ConnectSpec): Promise<void> {
    return this.lock.run(async () => {
      const net = this.findNetwork(netRef);
      const c = this.findContainer(spec.container);
      if (c.state.status !== 'running') throw new DnsnetError('conflict', `connect ${c.name} to ${net.name}: the container is not running`);
      if (c.endpoints.some((ep) => ep.networkId === net.id)) throw new DnsnetError('conflict', `connect ${c.name} to ${net.name}: already connected`);
      if (net.isDefault && spec.aliases.length > 0) throw new DnsnetError('invalid', `connect ${c.name}: network-scoped aliases are only supported for user-defined networks`);
      for (const a of spec.aliases) validateAlias(a, '--alias');
      const used = new Set(c.endpoints.map((ep) => Number(ep.ifname.slice(3))));
      let index = 0;
      while (used.has(index)) index++;
      const ep = this.planEndpoint(c, net, spec.aliases, spec.ip, index);
      c.endpoints.push(ep);
      try {
        await addEndpoint(this.endpointPlan(c, ep, false), false);
        await rewriteHosts(this.roots, c, this.hostsText(c));
        if (usesEmbeddedDns(c, this.networks)) this.resolver.upsert(this.resolverView(c));
        await this.store.saveContainer(c);
      } catch (error) {
        c.endpoints = c.endpoints.filter((e) => e !== ep);
        await deleteLink(ep.hostVeth).catch(() => undefined);
        throw wrapError(`connect ${c.name} to ${net.name}`, error, 'kernel');
      }
    });
  }

  disconnect(netRef: string, ctrRef: string): Promise<void> {
    return this.lock.run(async () => {
      const net = this.findNetwork(netRef);
      const c = this.findContainer(ctrRef);
      const ep = c.endpoints.find((e) => e.networkId === net.id);
      if (!ep) throw new DnsnetError('conflict', `disconnect ${c.name} from ${net.name}: not connected`);
      c.endpoints = c.endpoints.filter((e) => e !== ep);
      if (c.state.status === 'running') {
        await deleteLink(ep.hostVeth);
        await rewriteHosts(this.roots, c, this.hostsText(c));
        if (usesEmbeddedDns(c, this.networks)) this.resolver.upsert(this.resolverView(c));
      }
      await this.store.saveContainer(c);
    });
  }

  // ---------- system ----------

  /** Remove kernel objects that look like this root's but that no record owns (dead state). */
  systemPrune(): Promise<string[]> {
    return this.lock.run(() => pruneSystem(this));
  }
}

/** Docker's warnings for a run, printed by the CLI (`WARNING: ...`); the run goes ahead. */
export function runWarnings(spec: Pick<RunSpec, 'dns'>): string[] {
  const loop = spec.dns.find((d) => isLoopback(d));
  return loop ? [`Localhost DNS setting (--dns=${loop}) may fail in containers.`] : [];
}
