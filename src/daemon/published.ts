// Published ports, for the engine: the host ports each container holds (ports/holder.ts), and the firewall
// that forwards them (the networks and every running container's ports, applied as one nftables table, with
// route_localnet on the bridges while any port is published). The engine decides when; this does it.
import { applyRuleset, setRouteLocalnet } from '../bridge/index.js';
import { PortHolder, type PublishedPort } from '../ports/holder.js';
import { hasBridge, type ContainerRecord } from '../state/types.js';
import { firewallTable } from './drivers/index.js';
import { bindingsToPublish, firewall, proxyTarget, type World } from './plan.js';

export class Published {
  private readonly holder: PortHolder;

  constructor(
    private readonly w: World,
    private readonly log: (line: string) => void,
  ) {
    this.holder = new PortHolder(log, w.loIPv6);
  }

  /** Hold the host ports `c` publishes, all or none (a taken port refuses the run before anything changes). */
  async hold(c: ContainerRecord): Promise<void> {
    const others: PublishedPort[] = [...this.w.containers.values()].filter((o) => o.id !== c.id).flatMap((o) => o.ports ?? []);
    c.ports = await this.holder.reserve(c.id, bindingsToPublish(this.w, c), () => proxyTarget(this.w, c), others);
  }

  /** Let go of `c`'s host ports, and of their rules. */
  async release(c: ContainerRecord): Promise<void> {
    this.holder.release(c.id);
    if ((c.ports ?? []).length === 0) return;
    c.ports = [];
    await this.sync().catch((e: unknown) => this.log(`[daemon] firewall after ${c.name}: ${(e as Error).message}`));
  }

  /** After a daemon restart: hold again what the re-adopted containers publish (their DNAT rules kept working meanwhile). */
  async readopt(): Promise<void> {
    for (const c of this.w.containers.values()) {
      if (c.state.status !== 'running' || (c.ports ?? []).length === 0) continue;
      const failed = await this.holder.readopt(c.id, c.ports ?? [], () => proxyTarget(this.w, c));
      for (const f of failed) this.log(`[daemon] container ${c.name}: could not hold published port ${f} again`);
    }
  }

  /** Make the nftables table match the networks and the ports published now (route_localnet where ports are). */
  async sync(): Promise<void> {
    const fw = firewall(this.w);
    const bridges = fw.networks.filter(hasBridge);
    for (const n of bridges) await setRouteLocalnet(n.device, fw.ports.length > 0);
    await applyRuleset(firewallTable(this.w.roots), fw);
  }

  /** Re-apply after `c`'s endpoints changed, when it publishes anything. */
  async endpointsChanged(c: ContainerRecord): Promise<void> {
    if ((c.ports ?? []).length > 0) await this.sync();
  }

  close(): void {
    this.holder.close();
  }
}
