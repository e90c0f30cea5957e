// The overlay driver (issue 18): a network that spans the hosts of a cluster. Its record lives in etcd
// (../../cluster/networks.ts); each host keeps a copy and makes, on its own side, a bridge with the network's
// gateway address and a VXLAN device on it (../../overlay/vxlan.ts). A container's endpoint is a veth on that
// bridge, as on a bridge network, but its address is claimed in etcd first, so no two hosts hand it out; the
// way out is through the container's own host (its bridge is the gateway, NATed like a bridge network's), as
// Docker's overlay containers go out through their host's docker_gwbridge. Every host's bridge answers for the
// same gateway address: the VXLAN device is in `proxy` mode, which answers ARP itself and never sends it to
// other hosts, so each container only ever learns its own host's bridge.
//
// What etcd, the leases and the other hosts' containers need is the cluster's (../cluster.ts): this driver
// asks it through `OverlayCluster`.
import { DnsnetError, wrapError } from '../../errors.js';
import type { NetworkCreateSpec } from '../../api/types.js';
import { macFor } from '../../ipam/index.js';
import { parseCidr } from '../../ip/index.js';
import { hasLink } from '../../netns/links.js';
import { addEndpoint, deleteLink } from '../../netns/sandbox.js';
import { createVxlan } from '../../overlay/vxlan.js';
import { applyRuleset, createBridge, deleteBridge, enableForwarding, type Firewall } from '../../bridge/index.js';
import { ownerTag, vethName } from '../../state/kernel-names.js';
import type { Roots } from '../../state/paths.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord } from '../../state/types.js';
import { bridgeAttachPlan, firewallTable } from './bridge.js';
import type { NetworkDriver } from './driver.js';

/** What the overlay driver needs of the cluster (../cluster.ts). */
export interface OverlayCluster {
  /** This host's underlay address (`--cluster-advertise`): the VXLAN devices' source. */
  readonly advertise: string;
  /** Create the network in etcd (name, subnet and VNI claimed in one transaction); its record for this host. */
  createNetwork(spec: NetworkCreateSpec): Promise<NetworkRecord>;
  /** Remove it from etcd; refused while any host holds an address on it. */
  removeNetwork(net: NetworkRecord): Promise<void>;
  /** Claim an address (`requested`, --ip, or the lowest free one) for `c` on `net`. */
  claim(c: ContainerRecord, net: NetworkRecord, requested: string | undefined): Promise<{ ip: string; revision: number }>;
  /** Tell the other hosts about `ep` (its names, address and MAC, this host as its VTEP). */
  announce(c: ContainerRecord, ep: EndpointRecord): Promise<void>;
  /** Withdraw `ep` and let go of its address claim. */
  release(c: ContainerRecord, ep: EndpointRecord): Promise<void>;
  /** The other hosts' containers on `net`, for the new VXLAN device. */
  deviceMade(net: NetworkRecord): void;
}

/** The VXLAN device of an overlay network on this host: `vx-` + 12 hex of its ID (the bridge is `dn-` + the same). */
export function vxlanName(networkId: string): string {
  return `vx-${networkId.slice(0, 12)}`;
}

/** What an overlay network refuses at `create` (one line each). */
export function checkOverlaySpec(spec: NetworkCreateSpec): void {
  const refuse = (why: string) => new DnsnetError('invalid', `create network ${spec.name}: ${why}`);
  if (spec.ipv6) throw refuse('overlay networks are IPv4 only in dnsnet (--ipv6)');
  if (spec.subnets.length > 1) throw refuse('an overlay network has one subnet');
  if (spec.subnets[0] !== undefined && parseCidr(spec.subnets[0], 'subnet').family !== 4) throw refuse(`subnet ${spec.subnets[0]} is not IPv4`);
  if (spec.gateways.length > 0) throw refuse('--gateway is not supported on overlay networks (the first address of the subnet is the gateway on every host)');
  if (spec.ipRange !== undefined) throw refuse('--ip-range is not supported on overlay networks');
  const unknown = Object.keys(spec.options);
  if (unknown.length > 0) throw refuse(`unknown overlay option "${unknown[0]}": the MTU is the underlay's minus the VXLAN overhead`);
}

export function overlayDriver(cluster: () => OverlayCluster | undefined): NetworkDriver {
  const need = (what: string): OverlayCluster => {
    const c = cluster();
    if (!c) throw new DnsnetError('invalid', `${what}: this daemon is in no cluster (start it with --cluster-store and --cluster-advertise, or DNSNET_CLUSTER_STORE and DNSNET_CLUSTER_ADVERTISE)`);
    return c;
  };
  return {
    name: 'overlay',
    sandbox: 'own',
    endpoints: true,
    scope: 'global',
    plan: (spec) => {
      checkOverlaySpec(spec);
      return need(`create network ${spec.name}`).createNetwork(spec);
    },
    async create(roots: Roots, net: NetworkRecord, fw: Firewall): Promise<void> {
      const c = need(`network ${net.name}`);
      try {
        await createBridge(net, ownerTag(roots.stateRoot));
      } catch (error) {
        throw wrapError(`create bridge ${net.device}`, error, 'kernel');
      }
      try {
        await createVxlan({ device: vxlanName(net.id), vni: net.vni ?? 0, local: c.advertise, bridge: net.device });
        await applyRuleset(firewallTable(roots), fw);
        await enableForwarding(false);
      } catch (error) {
        await deleteLink(vxlanName(net.id)).catch(() => undefined);
        await deleteBridge(net.device).catch(() => undefined);
        throw wrapError(`set up overlay network ${net.name}`, error, 'kernel');
      }
      c.deviceMade(net);
    },
    async remove(roots: Roots, net: NetworkRecord, fw: Firewall): Promise<string[]> {
      const failures: string[] = [];
      await applyRuleset(firewallTable(roots), fw).catch((e: unknown) => failures.push(`firewall: ${(e as Error).message}`));
      if (hasLink(vxlanName(net.id))) await deleteLink(vxlanName(net.id)).catch((e: unknown) => failures.push(`${vxlanName(net.id)}: ${(e as Error).message}`));
      await deleteBridge(net.device).catch((e: unknown) => failures.push(`bridge ${net.device}: ${(e as Error).message}`));
      return failures;
    },
    exists: (net) => hasLink(net.device) && hasLink(vxlanName(net.id)),
    async claim(c, net, requested) {
      return need(`run ${c.name}`).claim(c, net, requested);
    },
    planEndpoint(c: ContainerRecord, net: NetworkRecord, req): EndpointRecord {
      const v4 = net.ipam[0];
      if (!v4 || req.claimed === undefined) throw new DnsnetError('internal', `overlay endpoint of ${c.name} on ${net.name} without a claimed address`);
      return {
        networkId: net.id,
        networkName: net.name,
        ifname: `eth${req.index}`,
        hostVeth: vethName(c.id, net.id),
        mac: macFor(req.claimed.ip),
        ipv4: req.claimed.ip,
        prefixLen: parseCidr(v4.subnet).prefix,
        gateway: v4.gateway,
        aliases: req.aliases,
        claim: req.claimed.revision,
        ...(req.ip ? { requestedIp: req.ip } : {}),
      };
    },
    attachPlan: bridgeAttachPlan,
    join: (plan) => addEndpoint(plan, false),
    leave: (ep) => deleteLink(ep.hostVeth),
    announce: (c, ep) => need(`announce ${c.name}`).announce(c, ep),
    release: (c, ep) => need(`release ${c.name}`).release(c, ep),
    dnsMode: () => 'embedded',
  };
}
