// Bridge devices and their gateway addresses, the host's taken subnets, IP forwarding (shell).
import fs from 'node:fs/promises';
import path from 'node:path';
import { DnsnetError } from '../errors.js';
import { familyOf, formatCidr, parseCidr, parseCidrLoose } from '../ip/index.js';
import { hasLink } from '../netns/links.js';
import { ipJson, runIp, runIpBatch } from '../netns/run.js';
import type { NetworkRecord } from '../state/types.js';

export interface LinkInfo {
  ifindex: number;
  ifname: string;
  kind?: string; // linkinfo.info_kind: bridge, veth, ...
  up: boolean; // administratively up (flag UP); a bridge without ports still reads operstate DOWN
  operstate?: string;
  mtu?: number;
  master?: string;
  address?: string; // MAC
  alias?: string; // ifalias: dnsnet writes its state root's owner tag there
}

interface RawLink {
  ifindex: number;
  ifname: string;
  flags?: string[];
  operstate?: string;
  mtu?: number;
  master?: string;
  address?: string;
  linkinfo?: { info_kind?: string };
  ifalias?: string;
}

/**
 * The `ip -batch` lines that create a network's bridge: device, MTU, gateway addresses, the owner
 * tag of its state root as the link's alias (so `system prune` can tell its own orphans), up (pure).
 */
export function bridgeBatch(net: NetworkRecord, owner?: string): string[] {
  const dev = net.device;
  // A bridge without an address of its own takes the lowest MAC of its ports, so a new container with
  // a lower MAC changes the gateway's MAC under every other container, whose ARP entry then goes stale
  // for up to ~30 s (netavark had this bug). An address given at creation is kept.
  const lines = [`link add ${dev} address ${bridgeMac(net.id)} mtu ${net.mtu} type bridge`];
  for (const c of net.ipam) {
    const prefix = parseCidr(c.subnet).prefix;
    // nodad: the gateway is ours alone; without it the address stays "tentative" for a second or
    // two and cannot be bound or routed from.
    if (familyOf(c.subnet) === 6) lines.push(`addr add ${c.gateway}/${prefix} dev ${dev} nodad`);
    else lines.push(`addr add ${c.gateway}/${prefix} brd + dev ${dev}`);
  }
  if (owner) lines.push(`link set ${dev} alias ${owner}`);
  lines.push(`link set ${dev} up`);
  return lines;
}

/** A stable, locally administered unicast MAC from the network ID (containers use 02:42:<IPv4>). */
export function bridgeMac(networkId: string): string {
  const bytes = networkId.slice(0, 10).match(/../g) ?? [];
  if (bytes.length !== 5 || bytes.some((b) => !/^[0-9a-f]{2}$/.test(b))) throw new DnsnetError('invalid', `network ID ${networkId} is not hex`);
  return ['0a', ...bytes].join(':');
}

/** Whether a link of that name exists in our netns (netns/links.ts); async for the callers that await it. */
export async function linkExists(name: string): Promise<boolean> {
  return hasLink(name);
}

/**
 * Create the network's bridge in one `ip -batch -`. A device of that name that already exists is
 * a 'conflict' and is left alone (it is not ours to roll back); a failure after the device was
 * made deletes it again.
 */
export async function createBridge(net: NetworkRecord, owner?: string): Promise<void> {
  if (await linkExists(net.device)) throw new DnsnetError('conflict', `create bridge ${net.device}: a device with that name already exists`);
  try {
    await runIpBatch(bridgeBatch(net, owner), { what: `create bridge ${net.device}` });
  } catch (error) {
    if (await linkExists(net.device)) await runIp(['link', 'delete', net.device]).catch(() => undefined);
    throw error;
  }
}

/** Delete a bridge; one that does not exist is not an error (cleanup paths call this freely). */
export async function deleteBridge(name: string): Promise<void> {
  if (!(await linkExists(name))) return;
  await runIp(['link', 'delete', name], { what: `delete bridge ${name}` });
}

export async function listLinks(): Promise<LinkInfo[]> {
  const raw = await ipJson<RawLink[]>(['-d', 'link', 'show']);
  return raw.map((l) => ({
    ifindex: l.ifindex,
    ifname: l.ifname,
    ...(l.linkinfo?.info_kind ? { kind: l.linkinfo.info_kind } : {}),
    up: (l.flags ?? []).includes('UP'),
    ...(l.operstate ? { operstate: l.operstate } : {}),
    ...(l.mtu !== undefined ? { mtu: l.mtu } : {}),
    ...(l.master ? { master: l.master } : {}),
    ...(l.address ? { address: l.address } : {}),
    ...(l.ifalias ? { alias: l.ifalias } : {}),
  }));
}

/**
 * What the host already uses, as normalised CIDRs of both families: every route of the main
 * table but the default ones (as Docker, which checks all routes with a destination, not only
 * on-link ones: a subnet shadowing a routed one would cut the host off from it) and the prefix
 * of every address. Includes dnsnet's own bridges: they are other dnsnet networks anyway.
 */
export async function hostTakenSubnets(): Promise<string[]> {
  const [routes4, routes6, addrs] = await Promise.all([
    ipJson<{ dst?: string }[]>(['-4', 'route', 'show']),
    ipJson<{ dst?: string }[]>(['-6', 'route', 'show']),
    ipJson<{ addr_info?: { local?: string; prefixlen?: number }[] }[]>(['addr', 'show']),
  ]);
  const found = new Set<string>();
  const add = (text: string) => {
    try {
      const c = parseCidrLoose(text);
      if (c.prefix > 0) found.add(formatCidr(c));
    } catch {
      // something iproute2 prints that is not a prefix (e.g. a multicast keyword): not a subnet
    }
  };
  for (const r of [...routes4, ...routes6]) if (r.dst && r.dst !== 'default') add(r.dst);
  for (const link of addrs) {
    for (const a of link.addr_info ?? []) if (a.local) add(a.prefixlen === undefined ? a.local : `${a.local}/${a.prefixlen}`);
  }
  return [...found];
}

/**
 * Turn on IPv4 forwarding (and IPv6 forwarding when a network has IPv6); a value already 1 is not
 * rewritten. Beware (Documentation/networking/ip-sysctl.rst): net.ipv6.conf.all.forwarding=1
 * makes interfaces with accept_ra=1 ignore router advertisements, so a host that learns its IPv6
 * default route by RA needs accept_ra=2. `procSys` is for tests.
 */
export async function enableForwarding(ipv6: boolean, procSys = '/proc/sys'): Promise<void> {
  const knobs = ['net/ipv4/ip_forward', ...(ipv6 ? ['net/ipv6/conf/all/forwarding'] : [])];
  for (const knob of knobs) {
    const file = path.join(procSys, knob);
    try {
      if ((await fs.readFile(file, 'utf8')).trim() === '1') continue;
      await fs.writeFile(file, '1\n');
    } catch (error) {
      throw new DnsnetError('kernel', `enable forwarding (${knob.replaceAll('/', '.')}): ${(error as Error).message}`, { cause: error });
    }
  }
}

/**
 * net.ipv4.conf.<dev>.route_localnet: on for a bridge whose containers publish ports, so that the host's
 * 127.0.0.1 can be DNATed to them (the table's guard chain drops what containers address to 127.0.0.0/8).
 */
export async function setRouteLocalnet(device: string, on: boolean, procSys = '/proc/sys'): Promise<void> {
  const file = path.join(procSys, 'net/ipv4/conf', device, 'route_localnet');
  try {
    if ((await fs.readFile(file, 'utf8')).trim() === (on ? '1' : '0')) return;
    await fs.writeFile(file, on ? '1\n' : '0\n');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // the bridge is gone (a reboot, a hand delete): nothing to set
    throw new DnsnetError('kernel', `set route_localnet on ${device}: ${(error as Error).message}`, { cause: error });
  }
}
