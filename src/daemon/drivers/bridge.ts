// The bridge driver: a Linux bridge per network (the default `bridge` network too), its IPAM, veth endpoints,
// NAT and isolation in the nftables table. Docker's `bridge` driver.
import fs from 'node:fs/promises';
import { DnsnetError, wrapError } from '../../errors.js';
import { allocateAddress, macFor, resolveIpamConfig } from '../../ipam/index.js';
import { parseCidr } from '../../ip/index.js';
import { hasLink } from '../../netns/links.js';
import { addEndpoint, deleteLink, type EndpointPlan } from '../../netns/sandbox.js';
import { applyRuleset, bridgeName, createBridge, deleteBridge, enableForwarding, hostTakenSubnets, tableName, type Firewall } from '../../bridge/index.js';
import { netnsName, ownerTag, vethName } from '../../state/kernel-names.js';
import type { Roots } from '../../state/paths.js';
import { SCHEMA_VERSION, type ContainerRecord, type EndpointRecord, type NetworkRecord } from '../../state/types.js';
import type { NetworkCreateSpec } from '../../api/types.js';
import { newId, validateName } from '../names.js';
import type { EndpointRequest, NetworkDriver } from './driver.js';

export const DEFAULT_NETWORK = 'bridge';
const KNOWN_OPTIONS = new Set(['mtu', 'com.docker.network.driver.mtu']);

/** The seed of this host's ULA /48: stable per host (machine-id), so a network's v6 subnet is too. */
export async function ulaSeed(): Promise<string> {
  try {
    return (await fs.readFile('/etc/machine-id', 'utf8')).trim();
  } catch {
    return 'dnsnet';
  }
}

export function firewallTable(roots: Roots): string {
  return tableName(roots.stateRoot);
}

export function parseMtu(options: Record<string, string>): number {
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new DnsnetError('invalid', `unknown network option "${key}": only mtu is supported`);
  }
  const raw = options.mtu ?? options['com.docker.network.driver.mtu'];
  if (raw === undefined) return 1500;
  const mtu = Number(raw);
  if (!/^\d+$/.test(raw) || mtu < 68 || mtu > 65535) throw new DnsnetError('invalid', `invalid mtu "${raw}": must be an integer from 68 to 65535`);
  return mtu;
}

/** Build (but do not apply) a network record for `network create`: all validation happens here. */
export async function planNetwork(
  spec: NetworkCreateSpec,
  existing: NetworkRecord[],
  hostNameservers: string[],
  opts: { isDefault?: boolean; device?: string } = {},
): Promise<NetworkRecord> {
  validateName('network', spec.name);
  if (existing.some((n) => n.name === spec.name)) throw new DnsnetError('conflict', `a network named ${spec.name} already exists`);
  const mtu = parseMtu(spec.options);
  const taken = [
    ...existing.flatMap((n) => n.ipam.map((c) => c.subnet)),
    ...(await hostTakenSubnets()),
    ...hostNameservers.map((ip) => (ip.includes(':') ? `${ip.split('%')[0]}/128` : `${ip}/32`)),
  ];
  const ipam = resolveIpamConfig({ subnets: spec.subnets, gateways: spec.gateways, ipRange: spec.ipRange, ipv6: spec.ipv6 }, taken, await ulaSeed());
  const id = newId();
  return {
    schema: SCHEMA_VERSION,
    id,
    name: spec.name,
    created: new Date().toISOString(),
    driver: 'bridge',
    isDefault: opts.isDefault ?? false,
    internal: spec.internal,
    enableIPv6: spec.ipv6,
    mtu,
    device: opts.device ?? bridgeName(id),
    ipam,
    options: spec.options,
  };
}

/** Make the bridge and the firewall agree with `all` (which includes net); undo the bridge on failure. */
export async function realizeNetwork(roots: Roots, net: NetworkRecord, fw: Firewall): Promise<void> {
  try {
    await createBridge(net, ownerTag(roots.stateRoot));
  } catch (error) {
    throw wrapError(`create bridge ${net.device}`, error, 'kernel');
  }
  try {
    await applyRuleset(firewallTable(roots), fw);
    await enableForwarding(fw.networks.some((n) => n.enableIPv6));
  } catch (error) {
    await deleteBridge(net.device).catch(() => undefined);
    throw wrapError(`set up firewall for ${net.name}`, error, 'kernel');
  }
}

export async function unrealizeNetwork(roots: Roots, net: NetworkRecord, fw: Firewall): Promise<string[]> {
  const failures: string[] = [];
  await applyRuleset(firewallTable(roots), fw).catch((e: unknown) => failures.push(`firewall: ${(e as Error).message}`));
  await deleteBridge(net.device).catch((e: unknown) => failures.push(`bridge ${net.device}: ${(e as Error).message}`));
  return failures;
}

export function defaultNetworkSpec(): NetworkCreateSpec {
  return { name: DEFAULT_NETWORK, subnets: [], gateways: [], ipv6: false, internal: false, options: {} };
}

/** An endpoint on a bridge: the lowest free addresses (or --ip), a veth whose host end joins the bridge. */
export function planBridgeEndpoint(c: ContainerRecord, net: NetworkRecord, req: EndpointRequest): EndpointRecord {
  const { ip, used } = req;
  const v4 = net.ipam.find((x) => parseCidr(x.subnet).family === 4);
  const v6 = net.ipam.find((x) => parseCidr(x.subnet).family === 6);
  if (!v4) throw new DnsnetError('internal', `network ${net.name} has no IPv4 subnet`);
  const wantV6 = ip?.includes(':');
  // An IPv6 --ip on a network without an IPv6 subnet would otherwise be ignored silently.
  if (wantV6 && !v6) throw new DnsnetError('invalid', `address ${ip} is IPv6, but network ${net.name} has no IPv6 subnet`);
  const ipv4 = allocateAddress(v4, used, wantV6 ? undefined : ip);
  const ipv6 = v6 ? allocateAddress(v6, used, wantV6 ? ip : undefined) : undefined;
  return {
    networkId: net.id,
    networkName: net.name,
    ifname: `eth${req.index}`,
    hostVeth: vethName(c.id, net.id),
    mac: macFor(ipv4),
    ipv4,
    ...(ipv6 && v6 ? { ipv6, prefixLen6: parseCidr(v6.subnet).prefix, gateway6: v6.gateway } : {}),
    prefixLen: parseCidr(v4.subnet).prefix,
    gateway: v4.gateway,
    aliases: req.aliases,
    ...(ip ? { requestedIp: ip } : {}),
  };
}

/** The veth, its addresses, and (first endpoint, unless --internal) the default route via the gateway. */
export function bridgeAttachPlan(c: ContainerRecord, ep: EndpointRecord, net: NetworkRecord, opts: { first: boolean; owner: string }): EndpointPlan {
  return {
    netns: netnsName(c.id),
    owner: opts.owner,
    hostVeth: ep.hostVeth,
    ifname: ep.ifname,
    bridge: net.device,
    mtu: net.mtu,
    mac: ep.mac,
    ipv4: ep.ipv4,
    prefixLen: ep.prefixLen,
    ...(ep.ipv6 ? { ipv6: ep.ipv6, prefixLen6: ep.prefixLen6 ?? 64 } : {}),
    ...(opts.first && !net.internal ? { gateway: ep.gateway, ...(ep.gateway6 ? { gateway6: ep.gateway6 } : {}) } : {}),
  };
}

export const bridgeDriver: NetworkDriver = {
  name: 'bridge',
  sandbox: 'own',
  endpoints: true,
  plan: planNetwork,
  create: realizeNetwork,
  remove: unrealizeNetwork,
  exists: (net) => hasLink(net.device),
  planEndpoint: planBridgeEndpoint,
  attachPlan: bridgeAttachPlan,
  join: (plan) => addEndpoint(plan, false),
  leave: (ep) => deleteLink(ep.hostVeth),
  // Docker's default network has no embedded DNS (names do not resolve; --link writes /etc/hosts lines).
  dnsMode: (net) => (net.isDefault ? 'legacy' : 'embedded'),
};
