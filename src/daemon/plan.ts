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
import { SCHEMA_VERSION, type ContainerRecord, type EndpointRecord, type NetworkRecord } from '../state/types.js';
import { containerHosts, containerResolvConf, type HostResolv, type LinkTarget } from './container-files.js';
import { DEFAULT_NETWORK, driverFor } from './drivers/index.js';
import type { EndpointPlan } from '../netns/sandbox.js';
import { parseLink, type Link } from '../state/links.js';
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

/**
 * Check everything a run asks for, before anything changes, and build its record (status `created`, no
 * endpoint yet). `fileExists` answers for --rootfs.
 */
export function planRun(w: World, spec: RunSpec, id: string, fileExists: (path: string) => boolean): { record: ContainerRecord; net: NetworkRecord } {
  if (spec.cmd.length === 0) throw new DnsnetError('invalid', 'run: no command given');
  const name = spec.name ?? generateName((n) => nameTaken(w, n));
  validateName('container', name);
  if (nameTaken(w, name)) throw new DnsnetError('conflict', `run: the container name "${name}" is already in use`);
  const net = findNetwork(w, spec.network ?? DEFAULT_NETWORK);
  if (spec.hostname !== undefined) validateHostname(spec.hostname);
  if (net.isDefault && spec.networkAliases.length > 0) {
    throw new DnsnetError('invalid', 'run: network-scoped aliases are only supported for user-defined networks');
  }
  for (const a of spec.networkAliases) validateAlias(a, '--network-alias');
  for (const d of spec.dns) parseDnsServer(d);
  for (const d of spec.dnsSearch) validateDnsSearch(d);
  for (const o of spec.dnsOptions) validateDnsOption(o);
  const extraHosts = spec.extraHosts.map((h) => (parseAddHost(h, defaultGateway(w)), splitAddHost(h))); // host-gateway kept for each write
  const links = spec.links.map((l) => checkLink(w, l, net));
  if (spec.workdir !== undefined && !spec.workdir.startsWith('/')) {
    throw new DnsnetError('invalid', `run: the working directory "${spec.workdir}" is not an absolute path`);
  }
  if (spec.rootfs !== undefined) {
    if (!spec.rootfs.startsWith('/')) throw new DnsnetError('invalid', `run: --rootfs "${spec.rootfs}" is not an absolute path`);
    for (const f of ['etc/hosts', 'etc/resolv.conf']) {
      if (!fileExists(`${spec.rootfs}/${f}`)) throw new DnsnetError('invalid', `run: --rootfs ${spec.rootfs} has no /${f} to bind-mount over`);
    }
  }
  for (const e of spec.env) {
    if (e === '' || e.startsWith('=')) throw new DnsnetError('invalid', `run: invalid environment variable "${e}"`);
  }
  const env = resolveEnv(spec.env, spec.callerEnv);
  const record: ContainerRecord = {
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
    links,
    extraHosts,
    dns: spec.dns,
    dnsSearch: spec.dnsSearch,
    dnsOptions: spec.dnsOptions,
    state: { status: 'created', pid: 0, exitCode: 0 },
    endpoints: [],
    files: {},
  };
  return { record, net };
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
export function runWarnings(spec: Pick<RunSpec, 'dns'>): string[] {
  const loop = spec.dns.find((d) => isLoopback(d));
  return loop ? [`Localhost DNS setting (--dns=${loop}) may fail in containers.`] : [];
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

/** A new endpoint of `c` on `net`, from its driver: eth<index>, the aliases, --ip when given. */
export function planEndpoint(w: World, c: ContainerRecord, net: NetworkRecord, aliases: string[], ip: string | undefined, index: number): EndpointRecord {
  return driverFor(net).planEndpoint(c, net, { aliases, ip, index, used: usedAddresses(w, net.id) });
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

/** Whether `c` asks the embedded resolver (its first network's driver says so; before it has one, the one asked for). */
export function usesEmbeddedDns(w: World, c: ContainerRecord): boolean {
  const first = c.endpoints[0];
  const net = first ? w.networks.get(first.networkId) : [...w.networks.values()].find((n) => n.name === c.network);
  return net ? driverFor(net).dnsMode(net) === 'embedded' : false;
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
  return containerHosts(c, w.loIPv6, defaultGateway(w), defaultNetworkLinks(w, c));
}

/** The container's /etc/resolv.conf (and the upstreams it names). */
export function resolvConf(w: World, c: ContainerRecord): GeneratedResolvConf {
  return containerResolvConf(c, usesEmbeddedDns(w, c) ? 'embedded' : 'legacy', w.networks, w.host);
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

/** How the container's process is started: into its netns, with its files bind-mounted and its hostname. */
export function launchFor(w: World, c: ContainerRecord, callerEnv: Record<string, string> | undefined): Launch {
  return {
    argv: buildLaunchArgv({
      netnsPath: netnsPath(c.id),
      hostsFile: paths.hostsFile(w.roots, c.id),
      hostnameFile: paths.hostnameFile(w.roots, c.id),
      resolvConfFile: paths.resolvConfFile(w.roots, c.id),
      hostname: c.hostname,
      workdir: c.workdir,
      ...(c.rootfs ? { rootfs: c.rootfs } : {}),
      cmd: c.cmd,
    }),
    env: buildEnv(c, callerEnv, []),
  };
}
