// A container's /etc/hosts, /etc/hostname and /etc/resolv.conf: what they say (pure) and writing them.
import fs from 'node:fs';
import {
  buildResolvConf,
  chooseHostResolvConf,
  HOST_GATEWAY,
  parseResolvConf,
  renderHostname,
  renderHosts,
  rewriteIfUnedited,
  writeInPlace,
  type GeneratedResolvConf,
  type ResolvConf,
} from '../resolvconf/index.js';
import { paths, type Roots } from '../state/paths.js';
import type { ContainerRecord, NetworkRecord } from '../state/types.js';

/** The host resolv.conf as last read: its text, the path it came from, parsed. */
export interface HostResolv {
  path: string;
  text: string;
  parsed: ResolvConf;
  // The systemd-resolved rule applies to the default network's copy only: the embedded resolver
  // forwards from the host netns, where 127.0.0.53 is reachable.
  legacy: { path: string; parsed: ResolvConf };
  /** systemd-resolved's upstream file as last read ('' when missing): watched like the host file. */
  systemdText: string;
}

export function readHostResolv(roots: Roots, text?: string): HostResolv {
  const hostText = text ?? readOr(roots.hostResolvConf);
  const parsed = parseResolvConf(hostText);
  const systemdText = readOrUndefined(roots.systemdResolvConf);
  const chosen = chooseHostResolvConf(hostText, roots.hostResolvConf, systemdText, roots.systemdResolvConf);
  return {
    path: roots.hostResolvConf,
    text: hostText,
    parsed,
    legacy: { path: chosen.path, parsed: chosen.path === roots.hostResolvConf ? parsed : parseResolvConf(chosen.text) },
    systemdText: systemdText ?? '',
  };
}

function readOr(file: string): string {
  return readOrUndefined(file) ?? '';
}

function readOrUndefined(file: string): string | undefined {
  try {
    // 1 MiB is far more than any real resolv.conf; a huge or binary file must not stall the daemon.
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(1 << 20);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      return buf.subarray(0, n).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/**
 * The container's resolv.conf: `embedded` (the resolver on 127.0.0.11), `legacy` (a filtered copy of the
 * host's) or `host` (the host's file itself, as Docker copies it for `--network host`; --dns* still apply).
 */
export function containerResolvConf(c: ContainerRecord, mode: 'embedded' | 'legacy' | 'host', networks: ReadonlyMap<string, NetworkRecord>, host: HostResolv): GeneratedResolvConf {
  if (mode === 'host' && c.dns.length + c.dnsSearch.length + c.dnsOptions.length === 0) {
    return { text: host.text, upstreams: [], nameservers: host.parsed.nameservers };
  }
  const ipv6 = c.endpoints.some((ep) => networks.get(ep.networkId)?.enableIPv6 ?? false);
  const src = mode === 'legacy' ? host.legacy : { path: host.path, parsed: host.parsed };
  return buildResolvConf({
    host: src.parsed,
    hostPath: src.path,
    mode,
    ipv6,
    dns: c.dns,
    dnsSearch: c.dnsSearch,
    dnsOptions: c.dnsOptions,
  });
}

export interface LinkTarget {
  ip: string;
  alias: string;
  hostname: string;
  name: string;
}

export function containerHosts(c: ContainerRecord, loIPv6: boolean, hostGateway: string | undefined, links: LinkTarget[]): string {
  return renderHosts({
    loIPv6,
    // host-gateway is the default network's gateway now (there is none when that network is gone: no line).
    extraHosts: c.extraHosts.flatMap((h) => (h.ip !== HOST_GATEWAY ? [h] : hostGateway ? [{ name: h.name, ip: hostGateway }] : [])),
    own: c.endpoints.flatMap((ep) => [{ ip: ep.ipv4 }, ...(ep.ipv6 ? [{ ip: ep.ipv6 }] : [])]),
    hostname: c.hostname,
    links,
  });
}

export function hostHasIPv6(): boolean {
  try {
    return fs.readFileSync('/proc/sys/net/ipv6/conf/all/disable_ipv6', 'utf8').trim() === '0';
  } catch {
    return false;
  }
}

/** First write of all three files (a new or restarted container): no edit to respect yet. */
export async function writeContainerFiles(roots: Roots, c: ContainerRecord, hosts: string, resolv: string): Promise<void> {
  c.files.hosts = await writeInPlace(paths.hostsFile(roots, c.id), hosts);
  c.files.hostname = await writeInPlace(paths.hostnameFile(roots, c.id), renderHostname(c.hostname));
  if (c.resolvConfEdited) return;
  c.files.resolvConf = await writeInPlace(paths.resolvConfFile(roots, c.id), resolv);
}

/** A later rewrite (host change, connect): in place, and never over a user's edit. */
export async function rewriteResolvConf(roots: Roots, c: ContainerRecord, text: string): Promise<boolean> {
  if (c.resolvConfEdited) return false;
  const r = await rewriteIfUnedited(paths.resolvConfFile(roots, c.id), text, c.files.resolvConf);
  if (r.edited) {
    c.resolvConfEdited = true;
    return true;
  }
  c.files.resolvConf = r.hash;
  return r.written;
}

export async function rewriteHosts(roots: Roots, c: ContainerRecord, text: string): Promise<boolean> {
  const r = await rewriteIfUnedited(paths.hostsFile(roots, c.id), text, c.files.hosts);
  if (!r.edited) c.files.hosts = r.hash;
  return r.written;
}
