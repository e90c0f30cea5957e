// This daemon's part in a cluster (issue 18): it holds the host's lease (../cluster/membership.ts), keeps a
// copy of the overlay networks and of every host's endpoints (../cluster/book.ts, endpoints.ts), and from
// them makes this host's side of each network (through the engine: bridge, VXLAN device), the other
// hosts' containers in the resolver (names, aliases, short ID, PTR) and in the VXLAN devices (forwarding and
// neighbour entries, one flood entry per host). It claims addresses for the overlay driver
// (drivers/overlay.ts), announces and withdraws endpoints, and, when it joins again after being cut off (or
// after a restart), claims its containers' addresses again: one taken meanwhile is replaced by a new one,
// in the container's netns, its files and its names on every host.
//
// Fenced (no member answered for 1.5 x the TTL), the other hosts' names are no longer served: the copy can
// no longer be trusted, and they have forgotten this host's. Nothing is claimed while not joined.
import { DnsnetError, wrapError } from '../errors.js';
import type { NetworkCreateSpec } from '../api/types.js';
import { Book, type BookChange } from '../cluster/book.js';
import { claimAddress, claimedAddresses, reclaimAddress, releaseAddress, type ClaimOwner } from '../cluster/claims.js';
import type { ClusterConfig } from '../cluster/config.js';
import { Etcd } from '../cluster/etcd.js';
import { EndpointBook, publishEndpoint, withdrawEndpoint, type OverlayEndpoint } from '../cluster/endpoints.js';
import { Membership, type MemberState } from '../cluster/membership.js';
import { createOverlayNetwork, removeOverlayNetwork, type OverlayNetwork } from '../cluster/networks.js';
import { hostTakenSubnets } from '../bridge/index.js';
import { macFor } from '../ipam/index.js';
import { runBridgeBatch, runIpBatch } from '../netns/run.js';
import { overlayMtu, peerBatch, remoteBatch } from '../overlay/vxlan.js';
import { hasLink } from '../netns/links.js';
import type { Resolver } from '../resolver/index.js';
import { bridgeName, netnsName } from '../state/kernel-names.js';
import { SCHEMA_VERSION, type ContainerRecord, type EndpointRecord, type NetworkRecord } from '../state/types.js';
import { driverFor, vxlanName, type OverlayCluster } from './drivers/index.js';

/** What the cluster needs of the engine. */
export interface ClusterWorld {
  readonly networks: ReadonlyMap<string, NetworkRecord>;
  readonly containers: ReadonlyMap<string, ContainerRecord>;
  readonly resolver: Resolver;
  log(line: string): void;
  /** Run `fn` under the engine's lock (no run, rm or network change meanwhile). */
  locked<T>(fn: () => Promise<T>): Promise<T>;
  /** This host's side of an overlay network: its record kept, its kernel objects made / removed. The lock is held. */
  adoptNetwork(net: NetworkRecord): Promise<void>;
  dropNetwork(net: NetworkRecord): Promise<void>;
  /** Make a known network's kernel objects again. The lock is held. */
  remakeNetwork(net: NetworkRecord): Promise<void>;
  /** `c`'s endpoints changed address: its files and names follow, its record is saved. The lock is held. */
  endpointsChanged(c: ContainerRecord): Promise<void>;
}

/** An overlay network's record on this host, from the cluster's. */
export function overlayRecord(n: OverlayNetwork): NetworkRecord {
  return {
    schema: SCHEMA_VERSION,
    id: n.id,
    name: n.name,
    created: n.created,
    driver: 'overlay',
    isDefault: false,
    internal: n.internal,
    enableIPv6: false,
    mtu: overlayMtu(),
    device: bridgeName(n.id),
    ipam: [{ subnet: n.subnet, gateway: n.gateway }],
    options: {},
    vni: n.vni,
    attachable: n.attachable,
  };
}

const epKey = (e: Pick<OverlayEndpoint, 'network' | 'container'>): string => `${e.network}/${e.container}`;
const same = (a: OverlayEndpoint | undefined, b: OverlayEndpoint | undefined): boolean => JSON.stringify(a) === JSON.stringify(b);

export class Cluster implements OverlayCluster {
  readonly advertise: string;
  private readonly etcd: Etcd;
  private readonly membership: Membership;
  private readonly networkBook: Book<OverlayNetwork>;
  private readonly endpointBook: EndpointBook;
  /** Whether the other hosts' names are served (joined, and not fenced since). */
  private trusted = false;
  /** The other hosts' endpoints as the resolver has them now, and as each VXLAN device has them. */
  private served = new Map<string, OverlayEndpoint>();
  private readonly inDevice = new Map<string, Map<string, OverlayEndpoint>>();
  /** Resolver and device updates, one at a time, in order. */
  private applying: Promise<void> = Promise.resolve();
  private booksStarted = false;
  private closed = false;

  constructor(
    private readonly cfg: ClusterConfig,
    private readonly w: ClusterWorld,
  ) {
    this.advertise = cfg.advertise;
    this.etcd = new Etcd({ endpoints: cfg.endpoints });
    this.membership = new Membership({
      etcd: this.etcd,
      prefix: cfg.prefix,
      host: cfg.advertise,
      ttl: cfg.ttl,
      onState: (state) => this.stateChanged(state),
      onRejoin: () => void this.rejoined(),
    });
    this.networkBook = new Book<OverlayNetwork>(this.etcd, `${cfg.prefix}networks/`, (changes) => void this.networksChanged(changes));
    this.endpointBook = new EndpointBook(this.etcd, cfg.prefix, () => this.refresh());
  }

  get state(): MemberState {
    return this.membership.state;
  }

  /** Join, read the networks and endpoints, claim the re-adopted containers' addresses again. Never throws: unreachable, it keeps trying. */
  async start(): Promise<void> {
    const joined = await this.membership.begin();
    await this.startBooks();
    if (joined) await this.rejoined();
    this.w.log(`[cluster] ${joined ? 'joined' : 'could not reach'} ${this.cfg.endpoints.join(', ')} as ${this.advertise} (lease ${this.cfg.ttl} s)`);
  }

  private async startBooks(): Promise<void> {
    if (this.booksStarted || this.closed) return;
    try {
      await this.networkBook.start();
      await this.endpointBook.start();
      this.booksStarted = true;
      await this.w.locked(() => this.dropVanished());
    } catch (error) {
      this.networkBook.close();
      this.endpointBook.close();
      this.w.log(`[cluster] read the store: ${(error as Error).message}; trying again`);
      setTimeout(() => void this.startBooks(), 1000).unref();
    }
  }

  /** For `system info`. */
  describe(): { Store: string[]; Advertise: string; State: string; LeaseTTLSeconds: number } {
    return { Store: [...this.cfg.endpoints], Advertise: this.advertise, State: this.membership.state, LeaseTTLSeconds: this.cfg.ttl };
  }

  /** `system reset`: leave for good, the lease revoked (this host's claims and endpoints go at once). */
  async leave(): Promise<void> {
    this.closed = true;
    this.networkBook.close();
    this.endpointBook.close();
    await this.membership.stop({ revoke: true });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.networkBook.close();
    this.endpointBook.close();
    // The lease is not revoked: a daemon started again within the TTL keeps its claims and names.
    await this.membership.stop({ revoke: false });
    await this.applying;
    this.etcd.close();
  }

  private owner(what: string): ClaimOwner {
    if (this.membership.state !== 'joined' || this.membership.lease === undefined) {
      throw new DnsnetError('conflict', `${what}: this host is not joined to the cluster store (${this.membership.state}): an overlay address cannot be claimed now`);
    }
    return { etcd: this.etcd, prefix: this.cfg.prefix, host: this.advertise, lease: this.membership.lease };
  }

  // ---------- networks ----------

  async createNetwork(spec: NetworkCreateSpec): Promise<NetworkRecord> {
    this.owner(`create network ${spec.name}`);
    if ([...this.w.networks.values()].some((n) => n.name === spec.name)) throw new DnsnetError('conflict', `network with name ${spec.name} already exists`);
    // This host's own subnets are avoided (its networks, its routes: an overlay 10.0.0.0/24 on a LAN of 10.0.0.0/24 would cut it off).
    const avoid = [...[...this.w.networks.values()].filter((n) => n.driver !== 'overlay').flatMap((n) => n.ipam.map((c) => c.subnet)), ...(await hostTakenSubnets())].filter((c) => !c.includes(':'));
    const net = await createOverlayNetwork(
      this.etcd,
      this.cfg.prefix,
      { name: spec.name, ...(spec.subnets[0] !== undefined ? { subnet: spec.subnets[0] } : {}), internal: spec.internal, attachable: spec.attachable === true },
      avoid,
    );
    return overlayRecord(net);
  }

  async removeNetwork(net: NetworkRecord): Promise<void> {
    await removeOverlayNetwork(this.etcd, this.cfg.prefix, net.name);
  }

  /** A network came (made here, or on another host) or went. */
  private async networksChanged(changes: BookChange<OverlayNetwork>[]): Promise<void> {
    await this.w
      .locked(async () => {
        for (const ch of changes) {
          const local = this.w.networks.get(ch.value.id);
          if (ch.type === 'up' && !local) {
            const clash = [...this.w.networks.values()].find((n) => n.name === ch.value.name);
            if (clash) {
              this.w.log(`[cluster] overlay network ${ch.value.name} not made here: this host has a ${clash.driver} network of that name`);
              continue;
            }
            await this.w.adoptNetwork(overlayRecord(ch.value)).catch((e: unknown) => this.w.log(`[cluster] overlay network ${ch.value.name}: ${(e as Error).message}`));
          } else if (ch.type === 'up' && local && !driverFor(local).exists(local)) {
            // Known from before, its devices gone (a reboot, or a start without the cluster's settings): made again.
            await this.w.remakeNetwork(local).catch((e: unknown) => this.w.log(`[cluster] overlay network ${local.name}: ${(e as Error).message}`));
          } else if (ch.type === 'down' && local) {
            await this.dropIfUnused(local);
          }
        }
      })
      .catch((e: unknown) => this.w.log(`[cluster] networks: ${(e as Error).message}`));
    this.refresh();
  }

  private async dropIfUnused(net: NetworkRecord): Promise<void> {
    const users = [...this.w.containers.values()].filter((c) => c.endpoints.some((ep) => ep.networkId === net.id));
    if (users.length > 0) {
      this.w.log(`[cluster] overlay network ${net.name} was removed from the store, but ${users.map((c) => c.name).join(', ')} still use it here; kept until they leave`);
      return;
    }
    await this.w.dropNetwork(net).catch((e: unknown) => this.w.log(`[cluster] remove overlay network ${net.name}: ${(e as Error).message}`));
  }

  /** Overlay networks this host kept a record of that the store no longer has (removed while it was away). */
  private async dropVanished(): Promise<void> {
    const known = new Set(this.networkBook.all().map((n) => n.id));
    for (const net of [...this.w.networks.values()]) if (net.driver === 'overlay' && !known.has(net.id)) await this.dropIfUnused(net);
  }

  /** Hosts with containers on `networkId` (Docker's Peers). */
  peers(networkId: string): string[] {
    const hosts = new Set(this.endpointBook.of(networkId).map((e) => e.host));
    return [...hosts].sort();
  }

  // ---------- endpoints ----------

  async claim(c: ContainerRecord, net: NetworkRecord, requested: string | undefined): Promise<{ ip: string; revision: number }> {
    const ipam = net.ipam[0];
    if (!ipam) throw new DnsnetError('internal', `overlay network ${net.name} has no subnet`);
    try {
      const got = await this.onLease(`run ${c.name} on ${net.name}`, (owner) => claimAddress(owner, net.id, ipam, c.id, requested));
      return { ip: got.ip, revision: got.modRevision };
    } catch (error) {
      throw wrapError(`claim an address on ${net.name}`, error, 'conflict');
    }
  }

  /**
   * `op` on this host's lease; when the store says the lease is gone before a renewal noticed (a host slowed
   * down past its TTL), join again with a new one and try once more.
   */
  private async onLease<T>(what: string, op: (owner: ClaimOwner) => Promise<T>): Promise<T> {
    const owner = this.owner(what);
    try {
      return await op(owner);
    } catch (error) {
      if (!/lease not found/i.test((error as Error).message)) throw error;
      this.w.log(`[cluster] ${what}: the store no longer has lease ${owner.lease}; joining again`);
      await this.membership.leaseLost(owner.lease);
      return op(this.owner(what));
    }
  }

  private endpointOf(c: ContainerRecord, ep: EndpointRecord): OverlayEndpoint {
    return { network: ep.networkId, container: c.id, name: c.name, hostname: c.hostname, aliases: ep.aliases, ip: ep.ipv4, mac: ep.mac, host: this.advertise };
  }

  async announce(c: ContainerRecord, ep: EndpointRecord): Promise<void> {
    await this.onLease(`announce ${c.name}`, (owner) => publishEndpoint(this.etcd, this.cfg.prefix, this.endpointOf(c, ep), owner.lease));
  }

  async release(c: ContainerRecord, ep: EndpointRecord): Promise<void> {
    try {
      await withdrawEndpoint(this.etcd, this.cfg.prefix, ep.networkId, c.id);
      if (ep.claim !== undefined) await releaseAddress({ etcd: this.etcd, prefix: this.cfg.prefix, host: this.advertise, lease: '0' }, ep.networkId, { ip: ep.ipv4, modRevision: ep.claim });
    } catch (error) {
      // The claim stays on this host's lease: the next sweep (at the next join) lets go of it.
      this.w.log(`[cluster] release ${ep.ipv4} of ${c.name}: ${(error as Error).message}; released at the next join`);
    }
  }

  /** A new VXLAN device: what it must know of the other hosts is added by the next refresh. */
  deviceMade(net: NetworkRecord): void {
    this.inDevice.delete(net.id);
    this.refresh();
  }

  // ---------- membership ----------

  private stateChanged(state: MemberState): void {
    this.w.log(`[cluster] ${state}${this.membership.lease ? ` (lease ${this.membership.lease})` : ''}`);
    if (state === 'fenced' || state === 'left') {
      if (this.trusted) this.w.log('[cluster] fenced: the other hosts\' names are no longer served until this host joins again');
      this.trusted = false;
      this.refresh();
    }
  }

  /**
   * Joined (first, or again after a fence or an expired lease): claim every local overlay address again on
   * the new lease (one taken meanwhile: a new address), announce the endpoints again, let go of what this
   * host held for containers it no longer has, and serve the other hosts' names again.
   */
  private async rejoined(): Promise<void> {
    await this.startBooks();
    await this.w
      .locked(async () => {
        const owner = this.owner('claim again');
        const mine = new Set<string>();
        for (const c of [...this.w.containers.values()]) {
          if (c.state.status === 'exited') continue;
          let changed = false;
          for (const ep of c.endpoints) {
            const net = this.w.networks.get(ep.networkId);
            if (net?.driver !== 'overlay') continue;
            mine.add(`${net.id}/${c.id}`);
            try {
              changed = (await this.claimAgain(owner, c, ep, net)) || changed;
            } catch (error) {
              this.w.log(`[cluster] container ${c.name}: claim ${ep.ipv4} on ${net.name} again: ${(error as Error).message}`);
            }
          }
          if (changed) await this.w.endpointsChanged(c);
        }
        await this.sweep(owner, mine);
      })
      .then(
        () => {
          this.trusted = true;
          this.refresh();
        },
        (e: unknown) => this.w.log(`[cluster] claim again: ${(e as Error).message}`),
      );
  }

  /** One endpoint's address claimed again (or, taken meanwhile, a new one given to it) and announced: whether it changed. */
  private async claimAgain(owner: ClaimOwner, c: ContainerRecord, ep: EndpointRecord, net: NetworkRecord): Promise<boolean> {
    const again = await reclaimAddress(owner, net.id, ep.ipv4, c.id);
    let changed = false;
    if (again) {
      ep.claim = again.modRevision;
    } else {
      const fresh = await claimAddress(owner, net.id, net.ipam[0]!, c.id);
      this.w.log(`[cluster] container ${c.name}: ${ep.ipv4} on ${net.name} was claimed by another host while this one was away; it now has ${fresh.ip}`);
      try {
        await readdress(c, ep, net, fresh.ip);
      } catch (error) {
        await releaseAddress(owner, net.id, fresh).catch(() => undefined);
        throw error;
      }
      ep.claim = fresh.modRevision;
      changed = true;
    }
    await publishEndpoint(this.etcd, this.cfg.prefix, this.endpointOf(c, ep), owner.lease);
    return changed;
  }

  /** Claims and endpoints this host holds in the store for containers it no longer has (died or removed while it was away). */
  private async sweep(owner: ClaimOwner, mine: Set<string>): Promise<void> {
    for (const net of this.w.networks.values()) {
      if (net.driver !== 'overlay') continue;
      for (const [ip, held] of await claimedAddresses(owner, net.id)) {
        if (held.host === this.advertise && !mine.has(`${net.id}/${held.container}`)) await releaseAddress(owner, net.id, { ip, modRevision: held.modRevision });
      }
    }
    for (const e of this.endpointBook.all()) {
      if (e.host === this.advertise && !mine.has(epKey(e))) await withdrawEndpoint(this.etcd, this.cfg.prefix, e.network, e.container);
    }
  }

  // ---------- the other hosts' containers: resolver and VXLAN devices ----------

  /** Bring the resolver and the devices in line with the copy (queued: one update at a time). */
  private refresh(): void {
    this.applying = this.applying.then(() => this.apply()).catch((e: unknown) => this.w.log(`[cluster] apply: ${(e as Error).message}`));
  }

  private async apply(): Promise<void> {
    const wanted = new Map<string, OverlayEndpoint>();
    if (this.trusted && !this.closed) {
      for (const e of this.endpointBook.all()) if (e.host !== this.advertise && this.w.networks.get(e.network)?.driver === 'overlay') wanted.set(epKey(e), e);
    }
    // The devices first, then the names (synchronous: no query sees half of it): a name that answers is reachable.
    for (const net of this.w.networks.values()) {
      if (net.driver !== 'overlay') continue;
      await this.applyDevice(net, new Map([...wanted].filter(([, e]) => e.network === net.id))).catch((e: unknown) => {
        this.inDevice.delete(net.id); // the next refresh adds everything again (replace: idempotent)
        this.w.log(`[cluster] overlay network ${net.name}: ${(e as Error).message}`);
      });
    }
    const touched = new Set<string>();
    for (const [k, e] of this.served) if (!same(wanted.get(k), e)) touched.add(e.container);
    for (const [k, e] of wanted) if (!same(this.served.get(k), e)) touched.add(e.container);
    this.served = wanted;
    for (const id of touched) {
      const eps = [...wanted.values()].filter((e) => e.container === id);
      const first = eps[0];
      if (!first) {
        this.w.resolver.remove(id);
        continue;
      }
      this.w.resolver.upsert({
        id,
        name: first.name,
        hostname: first.hostname ?? id.slice(0, 12),
        endpoints: eps.map((e) => ({ network: this.w.networks.get(e.network)!.name, ipv4: e.ip, aliases: e.aliases })),
        links: [],
        dns: [],
        forward: false,
      });
    }
    for (const id of [...this.inDevice.keys()]) if (!this.w.networks.has(id)) this.inDevice.delete(id);
  }

  private async applyDevice(net: NetworkRecord, wanted: Map<string, OverlayEndpoint>): Promise<void> {
    const dev = vxlanName(net.id);
    if (!hasLink(dev)) {
      this.inDevice.delete(net.id);
      return;
    }
    const has = this.inDevice.get(net.id) ?? new Map<string, OverlayEndpoint>();
    const gone = [...has].filter(([k, e]) => !same(wanted.get(k), e)).map(([, e]) => e);
    const added = [...wanted].filter(([k, e]) => !same(has.get(k), e)).map(([, e]) => e);
    if (gone.length === 0 && added.length === 0) return;
    const hostsBefore = new Set([...has.values()].map((e) => e.host));
    const hostsAfter = new Set([...wanted.values()].map((e) => e.host));
    const del = gone.map((e) => remoteBatch(dev, { vtep: e.host, mac: e.mac, ip: e.ip }, 'del'));
    const add = added.map((e) => remoteBatch(dev, { vtep: e.host, mac: e.mac, ip: e.ip }));
    // Deletions of what is already gone fail harmlessly: -force goes on past them.
    await runIpBatch(del.flatMap((b) => b.ip), { what: `vxlan ${dev}: neighbour entries`, force: true }).catch(() => undefined);
    await runBridgeBatch(
      [...del.flatMap((b) => b.bridge), ...[...hostsBefore].filter((h) => !hostsAfter.has(h)).flatMap((h) => peerBatch(dev, h, 'del'))],
      { what: `vxlan ${dev}: forwarding entries`, force: true },
    ).catch(() => undefined);
    await runBridgeBatch([...[...hostsAfter].filter((h) => !hostsBefore.has(h)).flatMap((h) => peerBatch(dev, h)), ...add.flatMap((b) => b.bridge)], { what: `vxlan ${dev}: forwarding entries` });
    await runIpBatch(add.flatMap((b) => b.ip), { what: `vxlan ${dev}: neighbour entries` });
    this.inDevice.set(net.id, wanted);
  }
}

/** Give `ep` a new address inside the container's netns (the MAC follows it), its default route kept. */
async function readdress(c: ContainerRecord, ep: EndpointRecord, net: NetworkRecord, ip: string): Promise<void> {
  const old = ep.ipv4;
  const mac = macFor(ip);
  // The old address goes first: added beside it, the new one would be its secondary, and deleting a primary
  // takes its secondaries along.
  const lines = [`link set ${ep.ifname} address ${mac}`, `addr del ${old}/${ep.prefixLen} dev ${ep.ifname}`, `addr add ${ip}/${ep.prefixLen} dev ${ep.ifname}`];
  if (c.endpoints[0] === ep && !net.internal) lines.push(`route replace default via ${ep.gateway} dev ${ep.ifname}`);
  await runIpBatch(lines, { netns: netnsName(c.id), what: `give ${c.name} its new address ${ip}` });
  ep.ipv4 = ip;
  ep.mac = mac;
}
