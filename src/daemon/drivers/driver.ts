// What a kind of network does, behind one interface: its kernel objects, its endpoints, how its containers
// resolve names. The engine's steps (run, connect, rm, network create/rm) call these and nothing
// driver-specific. Today: `bridge`; `host` and `null` for the pre-defined networks `host` and `none`; and
// `overlay`, whose networks span the hosts of a cluster (a global scope: addresses claimed in etcd, endpoints
// announced to the other hosts). Moby's libnetwork driver API and netavark's network types are the
// references; this is much smaller.
import type { NetworkCreateSpec } from '../../api/types.js';
import type { Firewall } from '../../bridge/index.js';
import type { EndpointPlan } from '../../netns/sandbox.js';
import type { Roots } from '../../state/paths.js';
import type { ContainerRecord, EndpointRecord, NetworkRecord } from '../../state/types.js';

export type DnsMode = 'embedded' | 'legacy' | 'host';

export interface EndpointRequest {
  aliases: string[];
  /** --ip, when asked for. */
  ip?: string | undefined;
  /** eth<index> inside the container. */
  index: number;
  /** Addresses of the network already taken. */
  used: Set<string>;
  /** A global driver's address, claimed (`claim`) before the endpoint is planned. */
  claimed?: { ip: string; revision: number } | undefined;
}

export interface NetworkDriver {
  readonly name: NetworkRecord['driver'];
  /** Where its containers live: a netns of their own (bridge, null) or the host's (host). */
  readonly sandbox: 'own' | 'host';
  /** Whether a container gets an endpoint on it (an address and a veth); false for host and null. */
  readonly endpoints: boolean;
  /** `local` (this host's alone) or `global` (the same network on every host of the cluster: overlay). */
  readonly scope?: 'local' | 'global';
  /** The record of a new network (all validation here); nothing is applied yet. */
  plan(spec: NetworkCreateSpec, existing: NetworkRecord[], hostNameservers: string[], opts?: { isDefault?: boolean; device?: string }): Promise<NetworkRecord>;
  /** Make its kernel objects (`fw`, the firewall to apply, includes it); undoes what it made on failure. */
  create(roots: Roots, net: NetworkRecord, fw: Firewall): Promise<void>;
  /** Remove its kernel objects (`fw`: the firewall without it); keeps going, returns what failed. */
  remove(roots: Roots, net: NetworkRecord, fw: Firewall): Promise<string[]>;
  /** Whether its kernel objects are there (after a reboot they are not). */
  exists(net: NetworkRecord): boolean;
  /** A global network's address for a new endpoint, claimed cluster-wide (before `planEndpoint`). */
  claim?(c: ContainerRecord, net: NetworkRecord, requested: string | undefined): Promise<{ ip: string; revision: number }>;
  /** Tell the other hosts about a new endpoint (once it is in the kernel); withdraw it and its claim. */
  announce?(c: ContainerRecord, ep: EndpointRecord): Promise<void>;
  release?(c: ContainerRecord, ep: EndpointRecord): Promise<void>;
  /** A new endpoint of `c` on `net` (pure: addresses from IPAM, or the claimed one; names). */
  planEndpoint(c: ContainerRecord, net: NetworkRecord, req: EndpointRequest): EndpointRecord;
  /** What the kernel makes for an endpoint (pure); `first` carries the default route. */
  attachPlan(c: ContainerRecord, ep: EndpointRecord, net: NetworkRecord, opts: { first: boolean; owner: string }): EndpointPlan;
  /** Add an endpoint to a running container; remove one. */
  join(plan: EndpointPlan): Promise<void>;
  leave(ep: EndpointRecord): Promise<void>;
  /** How its containers resolve names: the embedded resolver, a filtered copy of the host's file, or the host's file. */
  dnsMode(net: NetworkRecord): DnsMode;
}
