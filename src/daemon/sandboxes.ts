// One container's sandbox: its netns and endpoints (through the network's driver), its generated files, its
// names and sockets in the resolver; made, kept in step when endpoints or linked containers change, repaired
// when something was deleted by hand, and taken down. The engine decides when; this does it.
import fs from 'node:fs';
import { linkNames } from '../netns/links.js';
import { openResolverSockets } from '../netns/resolver-sockets.js';
import { attachNetnsWithEndpoints, deleteNetns, killNetnsProcesses } from '../netns/sandbox.js';
import { discardSpare, type SpareNetns } from '../netns/spare.js';
import type { Resolver } from '../resolver/index.js';
import { netnsName, netnsPath } from '../state/kernel-names.js';
import type { StateStore } from '../state/store.js';
import { netnsKind } from '../state/modes.js';
import type { ContainerRecord, EndpointRecord } from '../state/types.js';
import { rewriteHosts, rewriteResolvConf, writeContainerFiles } from './container-files.js';
import { driverFor } from './drivers/index.js';
import { attachPlans, hostsText, resolvConf, resolverView, usesEmbeddedDns, type World } from './plan.js';
import { descendsFrom } from './proc.js';
import { signal } from './supervisor.js';

export class Sandboxes {
  constructor(
    private readonly w: World,
    private readonly resolver: Resolver,
    private readonly store: StateStore,
    private readonly spare: SpareNetns,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * netns + endpoints + files + resolver sockets and names. The caller rolls back on failure.
   * The netns is a spare's (netns/spare.ts: made, `lo` up, sockets bound, all before this run): the
   * `ip` batch that adds the first veth names it, and its sockets go to the resolver.
   */
  async build(c: ContainerRecord): Promise<void> {
    const kind = netnsKind(c);
    if (kind === 'joined') return; // the netns and the files are the joined container's
    if (kind === 'host') {
      await writeContainerFiles(this.w.roots, c, hostsText(this.w, c), resolvConf(this.w, c).text);
      return;
    }
    const spare = await this.spare.take();
    let handed = false;
    try {
      // The files do not depend on the kernel objects: written while ip works. Both are awaited before
      // anything is thrown, so a rollback never races a write into the directory it removes.
      const [files, kernel] = await Promise.allSettled([
        writeContainerFiles(this.w.roots, c, hostsText(this.w, c), resolvConf(this.w, c).text),
        attachNetnsWithEndpoints(netnsName(c.id), spare.helper.pid, attachPlans(this.w, c), spare.ip),
      ]);
      if (kernel.status === 'rejected') throw kernel.reason;
      if (files.status === 'rejected') throw files.reason;
      if (usesEmbeddedDns(this.w, c)) {
        this.resolver.upsert(resolverView(this.w, c));
        this.resolver.attach(c.id, spare.sockets.udp, spare.sockets.tcp);
        handed = true;
      }
    } finally {
      discardSpare(spare, handed); // its netns, once named, outlives the helper
    }
    await this.announce(c, c.endpoints);
  }

  /** Tell the other hosts about `eps` (overlay endpoints: their driver announces them). */
  async announce(c: ContainerRecord, eps: EndpointRecord[]): Promise<void> {
    for (const ep of eps) {
      const net = this.w.networks.get(ep.networkId);
      if (net) await driverFor(net).announce?.(c, ep);
    }
  }

  /** Take `ep` out of the kernel, and withdraw what its driver announced or claimed elsewhere. Never throws. */
  async leave(c: ContainerRecord, ep: EndpointRecord): Promise<void> {
    const net = this.w.networks.get(ep.networkId);
    const driver = net ? driverFor(net) : driverFor('bridge');
    await driver.leave(ep).catch((e: unknown) => this.log(`[daemon] delete ${ep.hostVeth}: ${(e as Error).message}`));
    await driver.release?.(c, ep).catch((e: unknown) => this.log(`[daemon] release ${ep.ipv4} of ${c.name}: ${(e as Error).message}`));
  }

  /** The host's resolv.conf changed: every running container's file follows, in place (never over a user's edit). */
  async followHost(): Promise<void> {
    for (const c of this.w.containers.values()) {
      if (c.state.status !== 'running' || netnsKind(c) === 'joined') continue;
      const before = c.resolvConfEdited;
      await rewriteResolvConf(this.w.roots, c, resolvConf(this.w, c).text).catch((e: unknown) => this.log(`[watcher] rewrite ${c.name}: ${(e as Error).message}`));
      if (c.resolvConfEdited && !before) this.log(`[watcher] ${c.name}: /etc/resolv.conf was edited inside the container; left alone`);
      await this.store.saveContainer(c);
    }
  }

  /** Names in the resolver, and sockets bound in the container's netns (re-adoption). */
  async registerDns(c: ContainerRecord): Promise<void> {
    if (netnsKind(c) === 'joined') return;
    this.resolver.upsert(resolverView(this.w, c));
    if (usesEmbeddedDns(this.w, c)) {
      const { udp, tcp } = await openResolverSockets(netnsPath(c.id));
      this.resolver.attach(c.id, udp, tcp);
    }
  }

  /**
   * Remove the resolver's names and sockets, the endpoints and the netns. Keeps going on failure. Containers
   * that joined this one's netns keep running in it, with only `lo` left (Docker's behaviour).
   */
  async teardown(c: ContainerRecord): Promise<void> {
    this.resolver.remove(c.id);
    await this.resolver.detach(c.id).catch((e: unknown) => this.log(`[daemon] close sockets of ${c.name}: ${(e as Error).message}`));
    if (netnsKind(c) !== 'own') return; // the host's netns, or another container's: nothing of its own
    for (const ep of c.endpoints) await this.leave(c, ep);
    const joined = new Set([...this.w.containers.values()].filter((j) => j.netContainer === c.id && j.state.status === 'running').map((j) => j.state.pid));
    const strays = await killNetnsProcesses(netnsName(c.id), (pid) => joined.size > 0 && descendsFrom(pid, joined)).catch(() => 0);
    if (strays > 0) this.log(`[daemon] container ${c.name}: killed ${strays} process(es) left in its netns`);
    await deleteNetns(netnsName(c.id)).catch((e: unknown) => this.log(`[daemon] delete netns of ${c.name}: ${(e as Error).message}`));
  }

  /** Hosts file and resolver names after `c`'s endpoints changed (connect, disconnect, a lost veth). */
  async endpointsChanged(c: ContainerRecord, opts: { forgetIfLegacy: boolean }): Promise<void> {
    await rewriteHosts(this.w.roots, c, hostsText(this.w, c));
    if (usesEmbeddedDns(this.w, c)) this.resolver.upsert(resolverView(this.w, c));
    else if (opts.forgetIfLegacy) this.resolver.remove(c.id);
  }

  /**
   * The container `name` joined, left or went away: the containers linking to it follow. On a user network
   * the resolver answers the alias with its addresses now; on the default network the linker's /etc/hosts
   * lines are rewritten (Docker rewrites them when the target comes back with a new address; dnsnet also
   * takes them out while it is gone, so the old address, maybe another container's by then, is never used).
   */
  async refreshLinkers(name: string): Promise<void> {
    for (const other of [...this.w.containers.values()]) {
      if (other.state.status !== 'running' || !other.links.some((l) => l.target === name)) continue;
      try {
        if (usesEmbeddedDns(this.w, other)) this.resolver.upsert(resolverView(this.w, other));
        else {
          await rewriteHosts(this.w.roots, other, hostsText(this.w, other));
          await this.store.saveContainer(other);
        }
      } catch (error) {
        // The target's own change stands: a linker that could not follow is logged, not rolled back.
        this.log(`[daemon] ${other.name}, linking to ${name}: ${(error as Error).message}`);
      }
    }
  }

  /** A netns or veth was deleted outside dnsnet: a lost netns stops the container, a lost veth ends that endpoint. */
  async repair(c: ContainerRecord): Promise<void> {
    if (c.state.status !== 'running' || this.w.containers.get(c.id) !== c) return; // changed while we waited for the lock
    if (!fs.existsSync(netnsPath(c.id))) {
      this.log(`[supervisor] container ${c.name}: its network namespace was deleted outside dnsnet; stopping it`);
      c.state.error = 'its network namespace was deleted outside dnsnet';
      signal(c.state.pid, 'SIGKILL'); // the exit is then seen by the child's exit event or the next poll
      return;
    }
    const links = linkNames();
    const lost = c.endpoints.filter((ep) => !links.has(ep.hostVeth));
    if (lost.length === 0) return;
    for (const ep of lost) this.log(`[supervisor] container ${c.name}: veth ${ep.hostVeth} (network ${ep.networkName}) was deleted outside dnsnet; disconnecting`);
    c.endpoints = c.endpoints.filter((ep) => !lost.includes(ep));
    for (const ep of lost) {
      const net = this.w.networks.get(ep.networkId);
      if (net) await driverFor(net).release?.(c, ep).catch(() => undefined);
    }
    await this.endpointsChanged(c, { forgetIfLegacy: true }).catch((e: unknown) => this.log(`[supervisor] rewrite hosts of ${c.name}: ${(e as Error).message}`));
    await this.store.saveContainer(c);
  }
}
