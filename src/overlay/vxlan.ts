// An overlay network's data plane on one host (issue 18, the part that is built): a VXLAN device per
// network (one VNI per network), enslaved to the network's bridge, with no learning and no multicast:
// every remote container is a static forwarding entry (its MAC -> its host's underlay address) and a
// static neighbour entry (its IP -> its MAC) that the device answers ARP / NDP from (`proxy`), as Docker's
// overlay driver does; plus one all-zero forwarding entry per remote host, for what must be flooded.
// The store that says which containers live where (etcd) and the driver around this are not built yet.
import { DnsnetError } from '../errors.js';
import { ipVersion } from '../ip/index.js';
import { runBridgeBatch, runIpBatch, type IpOptions } from '../netns/run.js';

/** VXLAN's UDP port (IANA). */
export const VXLAN_PORT = 4789;
/** What the encapsulation takes of the underlay's MTU: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD = 50;

export interface VxlanSpec {
  /** The device's name (at most 15 characters). */
  device: string;
  vni: number;
  /** This host's underlay address (the outer source). */
  local: string;
  /** The network's bridge on this host. */
  bridge: string;
  /** The underlay's MTU: the device (and so the bridge) gets it minus the overhead. */
  underlayMtu?: number;
}

export interface RemoteEndpoint {
  /** The underlay address of the host the container lives on. */
  vtep: string;
  mac: string;
  ip: string;
}

function check(spec: VxlanSpec): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(spec.device)) throw new DnsnetError('invalid', `vxlan: bad device name ${JSON.stringify(spec.device)}`);
  if (!Number.isInteger(spec.vni) || spec.vni < 1 || spec.vni > 0xffffff) throw new DnsnetError('invalid', `vxlan: VNI ${spec.vni} is not in 1-16777215`);
  if (ipVersion(spec.local) !== 4) throw new DnsnetError('invalid', `vxlan: underlay address ${JSON.stringify(spec.local)} is no IPv4 address`);
}

/** The MTU inside the overlay for an underlay of `underlayMtu`. */
export function overlayMtu(underlayMtu = 1500): number {
  return underlayMtu - VXLAN_OVERHEAD;
}

/** `ip -batch` lines that make the device and put it on the bridge, up. */
export function vxlanBatch(spec: VxlanSpec): string[] {
  check(spec);
  const mtu = overlayMtu(spec.underlayMtu);
  return [
    `link add ${spec.device} type vxlan id ${spec.vni} local ${spec.local} dstport ${VXLAN_PORT} nolearning proxy`,
    `link set ${spec.device} mtu ${mtu} master ${spec.bridge}`,
    // The bridge learns nothing on this port either: a MAC learned there (a remote container's) would
    // outlive it by the ageing time, and a local container given that MAC later (its address, freed) would
    // be unreachable from other hosts until it sent something. Remote MACs are static entries instead.
    `link set ${spec.device} type bridge_slave learning off`,
    `link set ${spec.bridge} mtu ${mtu}`,
    `link set ${spec.device} up`,
  ];
}

/**
 * What teaches the device one remote container: `bridge` lines (where its MAC lives: behind the VXLAN port
 * for the bridge, at its host's address for the device) and an `ip` line (its IP's MAC, which the device
 * answers ARP / NDP from).
 */
export function remoteBatch(device: string, e: RemoteEndpoint, op: 'add' | 'del' = 'add'): { bridge: string[]; ip: string[] } {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(e.mac)) throw new DnsnetError('invalid', `vxlan: bad MAC ${JSON.stringify(e.mac)}`);
  if (ipVersion(e.vtep) !== 4 || ipVersion(e.ip) === 0) throw new DnsnetError('invalid', `vxlan: bad remote endpoint ${e.ip} at ${e.vtep}`);
  return {
    bridge:
      op === 'add'
        ? [`fdb replace ${e.mac} dev ${device} master static`, `fdb replace ${e.mac} dev ${device} dst ${e.vtep} self permanent`]
        : [`fdb del ${e.mac} dev ${device} master`, `fdb del ${e.mac} dev ${device} self`],
    ip: [op === 'add' ? `neigh replace ${e.ip} lladdr ${e.mac} dev ${device} nud permanent` : `neigh del ${e.ip} dev ${device}`],
  };
}

/** The `bridge` line for one remote host: broadcast and unknown traffic is sent to it too (one entry per host). */
export function peerBatch(device: string, vtep: string, op: 'add' | 'del' = 'add'): string[] {
  if (ipVersion(vtep) !== 4) throw new DnsnetError('invalid', `vxlan: bad peer ${JSON.stringify(vtep)}`);
  return [op === 'add' ? `fdb append 00:00:00:00:00:00 dev ${device} dst ${vtep} self permanent` : `fdb del 00:00:00:00:00:00 dev ${device} dst ${vtep} self`];
}

export async function createVxlan(spec: VxlanSpec, opts?: IpOptions): Promise<void> {
  await runIpBatch(vxlanBatch(spec), { ...opts, what: `create vxlan ${spec.device}` });
}

/** Add the entries for `remotes` and their hosts (new ones: a host already known is not appended again; the caller removes the gone ones with op 'del'). */
export async function applyRemotes(device: string, remotes: RemoteEndpoint[], opts?: IpOptions): Promise<void> {
  const vteps = [...new Set(remotes.map((r) => r.vtep))];
  const each = remotes.map((r) => remoteBatch(device, r));
  await runBridgeBatch([...vteps.flatMap((v) => peerBatch(device, v)), ...each.flatMap((b) => b.bridge)], { ...opts, what: `vxlan ${device}: forwarding entries` });
  await runIpBatch(each.flatMap((b) => b.ip), { ...opts, what: `vxlan ${device}: neighbour entries` });
}
