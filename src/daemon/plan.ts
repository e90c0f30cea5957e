// A container's plan (pure): what a run asks for, checked; its endpoints; and what its files, its resolver
// registration and its launch say, all worked out from the records in one place, so that `run`, `connect`,
// a host resolv.conf change and re-adoption all read the same values. Tested as tables without root.
import { DnsnetError } from '../errors.js';
import type { Launch, RunSpec } from '../api/types.js';
import { buildLaunchArgv } from '../netns/sandbox.js';
import { isLoopback } from '../ip/index.js';
import { embeddedUpstreams, parseAddHost, splitAddHost, parseDnsServer, validateAlias, validateDnsOption, validateDnsSearch, validateHostname, type GeneratedResolvConf } from '../resolvconf/index.js';
import type { ResolverRegistration } from '../resolver/index.js';
import { netnsPath, ownerTag } from '../state/kernel-names.js';
import { paths, type Roots } from '../state/paths.js';
import { hasBridge, isModeNetwork, SCHEMA_VERSION, type ContainerRecord, type EndpointRecord, type NetworkRecord } from '../state/types.js';
import { containerHosts, containerResolvConf, type HostResolv, type LinkTarget } from './container-files.js';
import { DEFAULT_NETWORK, driverFor, type DnsMode } from './drivers/index.js';
import type { EndpointPlan } from '../netns/sandbox.js';
import { parseLink, type Link } from '../state/links.js';
import type { Firewall, PortRule } from '../bridge/index.js';
import { exposedPorts, parsePublish, publishedBindings, type PortBindingRecord } from '../ports/spec.js';
import type { ProxyTarget } from '../ports/holder.js';
import { imageRun, resolveUser } from '../images/run-config.js';
import type { ImageRecord } from '../images/store.js';
import { imageRoot } from './rootfs.js';
import { CONTAINER_MODE_PREFIX, containerModeTarget, HOST_NETWORK, netnsKind } from '../state/modes.js';
import { findByRef, generateName, validateName } from './names.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What a plan reads: the records and the host's resolv.conf. */
export interface World {
  readonly roots: Roots;
  readonly networks: ReadonlyMap<string, NetworkRecord>;
  readonly containers: ReadonlyMap<string, ContainerRecord>;
  readonly host: HostResolv;
  /** Whether containers get IPv6 localhost lines (the host has IPv6). */
  readonly loIPv6: boolean;
  /** The host's hostname (a `host` container's default) and its /etc/hosts (a `host` container's copy). */
  readonly hostName: string;
  hostHosts(): string;
  /** A pulled image by reference or ID (`run IMAGE`), or undefined; and a file of it (its /etc/passwd). */
  findImage(ref: string): ImageRecord | undefined;
  imageFile(layers: string[], rel: string): string | undefined;
  imageLayerDir(digest: string): string;
}

export function findNetwork(w: World, ref: string): NetworkRecord {
  return findByRef(w.networks.values(), ref, 'network');
}

export function findContainer(w: World, ref: string): ContainerRecord {
  return findByRef(w.containers.values(), ref, 'container');
}

export function tryFindContainer(w: World, ref: string): ContainerRecord | undefined {
  try {
    return findContainer(w, ref);
  } catch {
    return undefined;
  }
}

function nameTaken(w: World, name: string): boolean {
  for (const c of w.containers.values()) if (c.name === name) return true;
  return false;
}

/** The default network's gateway (`--add-host NAME:host-gateway`). */
export function defaultGateway(w: World): string | undefined {
  for (const n of w.networks.values()) if (n.isDefault) return n.ipam[0]?.gateway;
  return undefined;
}

/** Docker's refusals of flags that a network mode cannot honour (moby's runconfig errors, word for word). */
const CONFLICT = {
  hostname: 'conflicting options: hostname and the network mode',
  dns: 'conflicting options: dns and the network mode',
  extraHosts: 'conflicting options: custom host-to-IP mapping and the network mode',
  containerLinks: "conflicting options: container type network can't be used with links. This would result in undefined behavior",
  hostLinks: "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
  publish: 'conflicting options: port publishing and the container type network mode',
  expose: 'conflicting options: port exposing and the container type network mode',
  ip: 'user specified IP address is supported on user defined networks only',
  alias: 'network-scoped alias is supported only for containers in user defined networks',
} as const;

/** What `--network` names: a network, or (container:X) the running container whose netns is joined. */
export type NetworkChoice = { net: NetworkRecord; target?: undefined } | { net?: undefined; target: ContainerRecord };

/** The running container whose netns `container:REF` joins (followed to the one that owns it). */
export function joinTarget(w: World, ref: string, selfId?: string): ContainerRecord {
  if (ref === '') throw new DnsnetError('invalid', 'invalid network mode: invalid container format container:<name|id>');
  let target = findContainer(w, ref);
  if (target.id === selfId) throw new DnsnetError('invalid', 'cannot join own network');
  if (target.netContainer) target = findContainer(w, target.netContainer);
  if (target.state.status !== 'running') throw new DnsnetError('conflict', `cannot join network of a non running container: ${ref}`);
  return target;
}

function chooseNetwork(w: World, spec: RunSpec): NetworkChoice {
  const mode = spec.network ?? DEFAULT_NETWORK;
  const ref = containerModeTarget(mode);
  const refuse = (why: string) => new DnsnetError('invalid', `run: ${why}`);
  if (ref !== undefined) {
    if (spec.hostname !== undefined) throw refuse(CONFLICT.hostname);
    if (spec.links.length > 0) throw refuse(CONFLICT.containerLinks);
    if (spec.dns.length + spec.dnsSearch.length + spec.dnsOptions.length > 0) throw refuse(CONFLICT.dns);
    if (spec.extraHosts.length > 0) throw refuse(CONFLICT.extraHosts);
    if ((spec.publish ?? []).length > 0 || spec.publishAll) throw refuse(CONFLICT.publish);
    if ((spec.expose ?? []).length > 0) throw refuse(CONFLICT.expose);
    if (spec.ip !== undefined) throw refuse(CONFLICT.ip);
    if (spec.networkAliases.length > 0) throw refuse(CONFLICT.alias);
    return { target: joinTarget(w, ref) };
  }
  const net = findNetwork(w, mode);
  if (isModeNetwork(net)) {
    if (spec.ip !== undefined) throw refuse(CONFLICT.ip);
    if (spec.networkAliases.length > 0) throw refuse(CONFLICT.alias);
    if (spec.links.length > 0) throw refuse(net.driver === 'host' ? CONFLICT.hostLinks : "conflicting options: none type networking can't be used with links");
  }
  if (net.isDefault && spec.networkAliases.length > 0) {
    throw new DnsnetError('invalid', 'run: network-scoped aliases are only supported for user-defined networks');
  }
  return { net };
}

/**
 * Check everything a run asks for, before anything changes, and build its record (status `created`, no
 * endpoint yet). `fileExists` answers for --rootfs.
 */
export function planRun(w: World, spec: RunSpec, id: string, fileExists: (path: string) => boolean): { record: ContainerRecord } & NetworkChoice {
  if (spec.cmd.length === 0) throw new DnsnetError('invalid', 'run: no command given');
  const name = spec.name ?? generateName((n) => nameTaken(w, n));
  validateName('container', name);
  if (nameTaken(w, name)) throw new DnsnetError('conflict', `run: the container name "${name}" is already in use`);
  const choice = chooseNetwork(w, spec);
  const { net, target } = choice;
  if (spec.hostname !== undefined) validateHostname(spec.hostname);
  for (const a of spec.networkAliases) validateAlias(a, '--network-alias');
  for (const d of spec.dns) parseDnsServer(d);
  for (const d of spec.dnsSearch) validateDnsSearch(d);
  for (const o of spec.dnsOptions) validateDnsOption(o);
  const extraHosts = spec.extraHosts.map((h) => (parseAddHost(h, defaultGateway(w)), splitAddHost(h))); // host-gateway kept for each write
  const links = net ? spec.links.map((l) => checkLink(w, l, net)) : [];
  if (spec.workdir !== undefined && !spec.workdir.startsWith('/')) {
    throw new DnsnetError('invalid', `run: the working directory "${spec.workdir}" is not an absolute path`);
  }
  // `run IMAGE [CMD...]`: the first word names a pulled image (else it is a host command, as before).
  const image = spec.rootfs === undefined && spec.cmd[0] !== undefined ? w.findImage(spec.cmd[0]) : undefined;
  if (spec.rootfs !== undefined) {
    if (!spec.rootfs.startsWith('/')) throw new DnsnetError('invalid', `run: --rootfs "${spec.rootfs}" is not an absolute path`);
    for (const f of ['etc/hosts', 'etc/resolv.conf']) {
      if (!fileExists(`${spec.rootfs}/${f}`)) throw new DnsnetError('invalid', `run: --rootfs ${spec.rootfs} has no /${f} to bind-mount over`);
    }
  }
  if (!image && (spec.entrypoint !== undefined || spec.user !== undefined)) {
    throw new DnsnetError('invalid', `run: --entrypoint and --user need an image: no pulled image is named "${spec.cmd[0] ?? ''}"`);
  }
  for (const e of spec.env) {
    if (e === '' || e.startsWith('=')) throw new DnsnetError('invalid', `run: invalid environment variable "${e}"`);
  }
  const layers = image?.layers.map((l) => l.digest) ?? [];
  const fromImage = image ? imageRun(image.config, { cmd: spec.cmd.slice(1), entrypoint: spec.entrypoint, workdir: spec.workdir, user: spec.user }) : undefined;
  const user = fromImage ? resolveUser(fromImage.user, w.imageFile(layers, 'etc/passwd') ?? '', w.imageFile(layers, 'etc/group') ?? '') : undefined;
  const env = [...(fromImage?.env ?? []), ...(user && user.uid !== 0 ? [`HOME=${user.home}`] : []), ...resolveEnv(spec.env, spec.callerEnv)];
  const portBindings = (spec.publish ?? []).flatMap(parsePublish);
  const exposed = [...new Set([...Object.keys(image?.config.ExposedPorts ?? {}), ...exposedPorts(spec.expose ?? [], portBindings)])];
  // Docker: a `host` container is named like the host, a joined one like the container it joins.
  const hostname = target ? target.hostname : (spec.hostname ?? (net.driver === 'host' ? w.hostName : id.slice(0, 12)));
  const record: ContainerRecord = {
    schema: SCHEMA_VERSION,
    id,
    name,
    created: new Date().toISOString(),
    hostname,
    domainname: '',
    cmd: fromImage?.cmd ?? spec.cmd,
    env,
    workdir: fromImage?.workdir ?? spec.workdir ?? '/',
    ...(spec.rootfs ? { rootfs: spec.rootfs } : {}),
    ...(image && user ? { image: { id: image.id, ref: spec.cmd[0]!, layers, uid: user.uid, gid: user.gid, user: fromImage?.user ?? '' } } : {}),
    detach: spec.detach,
    autoRemove: spec.autoRemove,
    network: target ? `${CONTAINER_MODE_PREFIX}${target.id}` : net.name,
    ...(target ? { netContainer: target.id } : {}),
    ...(spec.ip ? { requestedIp: spec.ip } : {}),
    networkAliases: spec.networkAliases,
    links,
    extraHosts,
    dns: spec.dns,
    dnsSearch: spec.dnsSearch,
    dnsOptions: spec.dnsOptions,
    portBindings,
    exposedPorts: exposed,
    publishAll: spec.publishAll ?? false,
    state: { status: 'created', pid: 0, exitCode: 0 },
    endpoints: [],
    files: {},
  };
  return { record, ...choice };
}

/**
 * `--link NAME[:ALIAS]`, as Docker takes it. On the default network the target must be a running container
 * there (its address goes into /etc/hosts now). On a user-defined network it may not exist yet: the alias
 * resolves once a container of that name joins a network the two share.
 */
export function checkLink(w: World, text: string, net: NetworkRecord): Link {
  const link = parseLink(text);
  if (link.target === '' || link.alias === '') throw new DnsnetError('invalid', `run: invalid --link "${text}": expected NAME[:ALIAS]`);
  validateAlias(link.alias, '--link');
  const target = tryFindContainer(w, link.target);
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

/** Docker's warnings for a run, printed by the CLI (`WARNING: ...`); the run goes ahead. */
export function runWarnings(spec: Pick<RunSpec, 'dns' | 'network' | 'publish' | 'publishAll'>): string[] {
  const warnings: string[] = [];
  const host = spec.network === HOST_NETWORK;
  const loop = spec.dns.find((d) => isLoopback(d));
  if (loop && !host) warnings.push(`Localhost DNS setting (--dns=${loop}) may fail in containers.`); // the host's loopback is reachable in `host`
  if (host && ((spec.publish ?? []).length > 0 || spec.publishAll)) warnings.push('Published ports are discarded when using host network mode');
  return warnings;
}

/** Docker's refusals: a container in host, none or container: mode keeps that mode; host and none take no one else. */
export function refuseModeChange(w: World, c: ContainerRecord, net: NetworkRecord, op: 'connect' | 'disconnect'): void {
  const refuse = (why: string) => new DnsnetError('conflict', `${op} ${c.name} ${op === 'connect' ? 'to' : 'from'} ${net.name}: ${why}`);
  if (net.driver === 'host') throw refuse('container cannot be disconnected from host network or connected to host network');
  if (op === 'connect' && netnsKind(c) !== 'own') {
    throw refuse('container sharing network namespace with another container or host cannot be connected to any other network');
  }
  if (op === 'disconnect' && net.driver === 'null') throw refuse('a container keeps the none mode it was run with until it is removed');
  if (net.driver === 'null' || modeNetwork(w, c)?.driver === 'null') {
    throw refuse('container cannot be connected to multiple networks with one of the networks in private (none) mode');
  }
}

/** Addresses of `networkId` that containers hold. */
export function usedAddresses(w: World, networkId: string): Set<string> {
  const used = new Set<string>();
  for (const c of w.containers.values()) {
    for (const ep of c.endpoints) {
      if (ep.networkId !== networkId) continue;
      used.add(ep.ipv4);
      if (ep.ipv6) used.add(ep.ipv6);
    }
  }
  return used;
}

/** A new endpoint of `c` on `net`, from its driver: eth<index>, the aliases, --ip when given (a global network's address: claimed before). */
export function planEndpoint(
  w: World,
  c: ContainerRecord,
  net: NetworkRecord,
  aliases: string[],
  ip: string | undefined,
  index: number,
  claimed?: { ip: string; revision: number },
): EndpointRecord {
  return driverFor(net).planEndpoint(c, net, { aliases, ip, index, used: usedAddresses(w, net.id), claimed });
}

/** The next free eth<N> of a running container. */
export function nextIfIndex(c: ContainerRecord): number {
  const used = new Set(c.endpoints.map((ep) => Number(ep.ifname.slice(3))));
  let index = 0;
  while (used.has(index)) index++;
  return index;
}

/** What the kernel makes for each of `c`'s endpoints (the first carries the default route). */
export function attachPlans(w: World, c: ContainerRecord, eps: EndpointRecord[] = c.endpoints, firstIndex = 0): EndpointPlan[] {
  return eps.map((ep, i) => {
    const net = w.networks.get(ep.networkId);
    if (!net) throw new DnsnetError('not-found', `network ${ep.networkName} no longer exists`);
    return driverFor(net).attachPlan(c, ep, net, { first: firstIndex + i === 0, owner: ownerTag(w.roots.stateRoot) });
  });
}

/** The network `c`'s mode names (`--network` at run), unless it joins another container. */
export function modeNetwork(w: World, c: ContainerRecord): NetworkRecord | undefined {
  if (c.netContainer !== undefined) return undefined;
  for (const n of w.networks.values()) if (n.name === c.network) return n;
  return undefined;
}

/** How `c` resolves names: its first network's driver says (before it has an endpoint, the mode's network); none when joined. */
export function dnsModeOf(w: World, c: ContainerRecord): DnsMode | undefined {
  const first = c.endpoints[0];
  const net = first ? w.networks.get(first.networkId) : modeNetwork(w, c);
  return net ? driverFor(net).dnsMode(net) : undefined;
}

/** Whether `c` asks the embedded resolver. */
export function usesEmbeddedDns(w: World, c: ContainerRecord): boolean {
  return dnsModeOf(w, c) === 'embedded';
}

/** `--link` on the default network becomes hosts lines: IP ALIAS HOSTNAME NAME. */
function defaultNetworkLinks(w: World, c: ContainerRecord): LinkTarget[] {
  const out: LinkTarget[] = [];
  for (const ep of c.endpoints) {
    const net = w.networks.get(ep.networkId);
    if (!net?.isDefault) continue;
    for (const link of c.links) {
      const target = tryFindContainer(w, link.target);
      const tep = target?.endpoints.find((e) => e.networkId === net.id);
      if (!target || !tep) continue;
      out.push({ ip: tep.ipv4, alias: link.alias, hostname: target.hostname, name: target.name });
    }
  }
  return out;
}

/** The container's /etc/hosts. */
export function hostsText(w: World, c: ContainerRecord): string {
  // Docker: a `host` container gets a copy of the host's file, unless --add-host asks for lines of its own.
  if (netnsKind(c) === 'host' && c.extraHosts.length === 0) return w.hostHosts();
  return containerHosts(c, w.loIPv6, defaultGateway(w), defaultNetworkLinks(w, c));
}

/** The container's /etc/resolv.conf (and the upstreams it names). */
export function resolvConf(w: World, c: ContainerRecord): GeneratedResolvConf {
  return containerResolvConf(c, dnsModeOf(w, c) ?? 'legacy', w.networks, w.host);
}

/** What the resolver serves for `c`: its names on its user-defined networks, its links, its upstreams. */
export function resolverView(w: World, c: ContainerRecord): ResolverRegistration {
  const own = embeddedUpstreams(w.host.parsed, c.dns);
  const user = c.endpoints.filter((ep) => {
    const net = w.networks.get(ep.networkId);
    return net !== undefined && driverFor(net).dnsMode(net) === 'embedded';
  });
  return {
    id: c.id,
    name: c.name,
    hostname: c.hostname,
    endpoints: user.map((ep) => ({ network: ep.networkName, ipv4: ep.ipv4, ...(ep.ipv6 ? { ipv6: ep.ipv6 } : {}), aliases: ep.aliases })),
    // By name: a target that does not exist yet resolves once it joins (the record store follows names).
    links: c.links.map((l) => ({ ...l })),
    // resolvconf's rule: --dns servers, dialled from the container's own netns (so an --internal network can
    // still reach a DNS server container on it); else the host's (setHostUpstreams), only when a network leads out.
    dns: own.fromContainer ? own.servers : [],
    dnsNetns: netnsPath(c.id),
    forward: user.some((ep) => !(w.networks.get(ep.networkId)?.internal ?? false)),
  };
}

/** `-e K=V` as given; `-e K` takes K's value from the caller's environment, and is left out when unset (as Docker does). */
export function resolveEnv(entries: string[], callerEnv: Record<string, string> | undefined): string[] {
  return entries.flatMap((e) => (e.includes('=') ? [e] : callerEnv?.[e] !== undefined ? [`${e}=${callerEnv[e]}`] : []));
}

/** The environment of the container's process (or an exec's, with `extra`). */
export function buildEnv(c: ContainerRecord, callerEnv: Record<string, string> | undefined, extra: string[]): Record<string, string> {
  const env: Record<string, string> = { PATH: DEFAULT_PATH, HOSTNAME: c.hostname, HOME: '/root' };
  if (callerEnv?.TERM) env.TERM = callerEnv.TERM;
  for (const e of resolveEnv([...c.env, ...extra], callerEnv)) {
    const i = e.indexOf('=');
    if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
  }
  return env;
}

/** How the container's process is started: into its netns (none: the host's), with its files bind-mounted and its hostname. */
export function launchFor(w: World, c: ContainerRecord, callerEnv: Record<string, string> | undefined): Launch {
  const kind = netnsKind(c);
  // A joined container lives in the netns of the one it joins, with that one's files.
  const owner = kind === 'joined' ? (c.netContainer ?? c.id) : c.id;
  const root = c.image ? imageRoot(w.roots, c.id) : undefined;
  return {
    argv: buildLaunchArgv({
      ...(kind === 'host' ? {} : { netnsPath: netnsPath(owner) }),
      ...(c.image && root
        ? { rootfs: root.merged, image: { lower: [...c.image.layers].reverse().map((d) => w.imageLayerDir(d)), upper: root.upper, work: root.work, uid: c.image.uid, gid: c.image.gid } }
        : {}),
      hostsFile: paths.hostsFile(w.roots, owner),
      hostnameFile: paths.hostnameFile(w.roots, owner),
      resolvConfFile: paths.resolvConfFile(w.roots, owner),
      hostname: c.hostname,
      workdir: c.workdir,
      ...(c.rootfs ? { rootfs: c.rootfs } : {}),
      cmd: c.cmd,
    }),
    env: buildEnv(c, callerEnv, []),
  };
}

/**
 * The endpoint `c`'s ports are published on: the one on the network it was run with (Docker publishes on
 * the bridge endpoint of the container's network mode). None in host, none and container: modes, and none
 * on an --internal network (Docker publishes nothing there).
 */
export function publishEndpoint(w: World, c: ContainerRecord): EndpointRecord | undefined {
  const net = modeNetwork(w, c);
  if (!net || !hasBridge(net) || net.internal) return undefined;
  return c.endpoints.find((ep) => ep.networkId === net.id);
}

/** What `c` asks to publish now (-p, and with -P its exposed ports); nothing when it has no endpoint to publish on. */
export function bindingsToPublish(w: World, c: ContainerRecord): PortBindingRecord[] {
  if (!publishEndpoint(w, c)) return [];
  return publishedBindings(c.portBindings ?? [], c.exposedPorts ?? [], c.publishAll ?? false);
}

/** Where the proxy of `c`'s held ports sends (read at each connection: the address may change at `start`). */
export function proxyTarget(w: World, c: ContainerRecord): ProxyTarget {
  const ep = publishEndpoint(w, c);
  return { ipv4: ep?.ipv4 ?? '127.0.0.1', ipv6: ep?.ipv6 };
}

/** The firewall: the networks (`networks`, default: all), and every running container's published ports. */
export function firewall(w: World, networks: NetworkRecord[] = [...w.networks.values()]): Firewall {
  const ports: PortRule[] = [];
  for (const c of w.containers.values()) {
    if (c.state.status === 'exited') continue;
    const ep = publishEndpoint(w, c);
    if (!ep || !networks.some((n) => n.id === ep.networkId)) continue;
    for (const p of c.ports ?? []) {
      const v6 = p.hostIp.includes(':');
      const containerIp = v6 ? ep.ipv6 : ep.ipv4;
      if (containerIp) ports.push({ proto: p.proto, hostIp: p.hostIp, hostPort: p.hostPort, containerIp, containerPort: p.containerPort });
    }
  }
  return { networks, ports };
}