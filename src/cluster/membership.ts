// A host's membership of the cluster (issue 18; the daemon's ../daemon/cluster.ts runs it): a lease of `ttl` seconds,
// renewed every third of it, and the host's key on it. Its states, and what they mean for the daemon:
// - 'joined': the lease is alive: claims made on it stand, other hosts see this one.
// - 'unreachable': no member answered for a while; the lease may still be alive, nothing new is claimed.
// - 'fenced': no member answered for `fenceAfter` (1.5 x the TTL; a watchdog looks every 250 ms, so it does
//   not wait for a renewal that hangs): the lease has expired for the others, so this host's claims and
//   names are gone there; its copy of theirs can no longer be trusted either.
// When a member answers again, the host joins with a new lease and says so (`onRejoin`): the daemon then
// re-claims its containers' addresses (claims.ts, reclaimAddress).
import type { Etcd } from './etcd.js';

export type MemberState = 'joining' | 'joined' | 'unreachable' | 'fenced' | 'left';

export interface MembershipOptions {
  etcd: Etcd;
  prefix: string;
  /** This host's advertise address. */
  host: string;
  /** Lease TTL, s (default 10). */
  ttl?: number;
  /** After how long without an answer the host fences itself, ms (default 1.5 x TTL). */
  fenceAfterMs?: number;
  onState?(state: MemberState, lease: string | undefined): void;
  /** A new lease after a fence or an expired lease: claims must be made again on it. */
  onRejoin?(lease: string): void;
}

export class Membership {
  state: MemberState = 'joining';
  lease: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private lastContact = 0;
  private stopped = false;
  private readonly ttl: number;
  private readonly fenceAfterMs: number;

  constructor(private readonly o: MembershipOptions) {
    this.ttl = o.ttl ?? 10;
    this.fenceAfterMs = o.fenceAfterMs ?? 1.5 * this.ttl * 1000;
  }

  private key(): string {
    return `${this.o.prefix}hosts/${this.o.host}`;
  }

  private set(state: MemberState): void {
    if (state === this.state) return;
    this.state = state;
    this.o.onState?.(state, this.lease);
  }

  /** Join (a lease and the host's key on it), then keep renewing. Resolves once joined. */
  async start(): Promise<void> {
    await this.join(false);
    this.schedule();
    this.watch();
  }

  /**
   * Try to join once, then keep renewing (or trying): true when joined now. Not joined (no member answered),
   * the host counts as fenced until it joins, and then says so with `onRejoin`.
   */
  async begin(): Promise<boolean> {
    try {
      await this.join(false);
    } catch {
      this.set('fenced');
    }
    this.schedule();
    this.watch();
    return this.state === 'joined';
  }

  private watch(): void {
    this.watchdog = setInterval(() => {
      if ((this.state === 'joined' || this.state === 'unreachable') && Date.now() - this.lastContact >= this.fenceAfterMs) this.set('fenced');
    }, 250);
    this.watchdog.unref();
  }

  /**
   * The store said the lease is gone (a call on it failed with "lease not found") before a renewal noticed:
   * join now with a new one (once, however many callers ask at the same time). Resolves when joined.
   */
  leaseLost(lost: string): Promise<void> {
    if (this.lease !== lost) return Promise.resolve(); // a new one already
    this.rejoining ??= this.join(true).finally(() => (this.rejoining = undefined));
    return this.rejoining;
  }

  private rejoining: Promise<void> | undefined;

  private async join(again: boolean): Promise<void> {
    const lease = await this.o.etcd.grant(this.ttl);
    await this.o.etcd.put(this.key(), JSON.stringify({ host: this.o.host, since: new Date().toISOString() }), lease);
    this.lease = lease;
    this.lastContact = Date.now();
    this.set('joined');
    if (again) this.o.onRejoin?.(lease);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), Math.max(100, (this.ttl * 1000) / 3));
  }

  private async tick(): Promise<void> {
    try {
      if (this.lease !== undefined && (this.state === 'joined' || this.state === 'unreachable')) {
        const ttl = await this.o.etcd.keepAlive(this.lease!);
        this.lastContact = Date.now();
        if (ttl > 0) this.set('joined');
        else await this.join(true); // the lease expired while we were away: a new one, claims again
      } else {
        await this.join(true); // fenced: back
      }
    } catch {
      if (this.state !== 'fenced') this.set(Date.now() - this.lastContact >= this.fenceAfterMs ? 'fenced' : 'unreachable');
    }
    this.schedule();
  }

  /**
   * Leave: stop renewing; with `revoke`, end the lease (this host's keys go at once). Without, they stay
   * until the lease expires: a daemon that stops and starts again within the TTL keeps its claims.
   */
  async stop(opts: { revoke?: boolean } = {}): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.watchdog);
    const lease = this.lease;
    this.set('left');
    if (lease && opts.revoke !== false) await this.o.etcd.revoke(lease).catch(() => undefined);
  }
}
