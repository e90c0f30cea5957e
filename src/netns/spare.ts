// A spare netns kept ready for the next `run`: made, `lo` up, resolver sockets bound in it and already
// handed to the daemon, its socket helper waiting for the netns to be named.
//
// Why: making a netns and starting a Node helper inside it to bind 127.0.0.11:53 cost 50-90 ms of a
// `run -d` (Node's start-up, then two IPC round trips). A spare does all that between runs. A run
// names the spare's netns with `ip netns attach NAME PID` (one more line in its first `ip` batch);
// from then on the netns outlives the helper, which is told to exit.
import { DnsnetError } from '../errors.js';
import { closeResolverSockets, startSpareHelper, type ResolverSockets, type SocketHelper } from './resolver-sockets.js';
import { PreparedIpBatch } from './run.js';

export interface Spare {
  /** Alive until discarded: its pid names the netns (`ip netns attach NAME PID`). */
  helper: SocketHelper;
  /** UDP and TCP 127.0.0.11:53 inside that netns, owned by this process. */
  sockets: ResolverSockets;
  /** `ip -batch -` processes already started for the run's two batches: host side, and inside this netns. */
  ip?: { host: PreparedIpBatch; inner: PreparedIpBatch };
}

export class SpareNetns {
  private next: Promise<Spare> | undefined;
  private closed = false;

  constructor(
    private readonly start: () => SocketHelper = startSpareHelper,
    private readonly timeoutMs = 5000,
    /** Start the run's `ip -batch` processes with the spare (off in unit tests with fake helpers). */
    private readonly prepareIp = true,
  ) {}

  /** Prepare a spare unless one is on its way (at boot, and after each run that took one). */
  refill(): void {
    if (this.closed || this.next) return;
    this.next = this.prepare();
    this.next.catch(() => undefined); // a failed spare is seen (and replaced) by the next take()
  }

  /**
   * The prepared spare (or a new one, when none is on its way or it failed or died: the run then pays
   * for it). The caller owns the result: name the netns and discard the helper, close the sockets
   * it does not keep.
   */
  async take(): Promise<Spare> {
    if (this.closed) throw new DnsnetError('internal', 'take a spare netns: the daemon is shutting down');
    const waiting = this.next;
    this.next = undefined;
    if (waiting) {
      try {
        const s = await waiting;
        if (s.helper.alive) return s;
        discardSpare(s); // its helper died: its netns can no longer be named
      } catch {
        // It failed while being prepared: one fresh attempt below, whose error is the one reported.
      }
    }
    return this.prepare();
  }

  close(): void {
    this.closed = true;
    void this.next?.then(discardSpare, () => undefined);
    this.next = undefined;
  }

  private async prepare(): Promise<Spare> {
    const helper = this.start();
    try {
      const sockets = await helper.bind({ loUp: true, keep: true, timeoutMs: this.timeoutMs });
      if (this.closed) {
        closeResolverSockets(sockets);
        throw new DnsnetError('internal', 'prepare a spare netns: the daemon is shutting down');
      }
      const spare: Spare = { helper, sockets };
      if (this.prepareIp && helper.pid > 0) spare.ip = { host: new PreparedIpBatch(), inner: new PreparedIpBatch(helper.pid) };
      return spare;
    } catch (error) {
      helper.discard();
      throw error;
    }
  }
}

export function discardSpare(s: Spare, keepSockets = false): void {
  s.ip?.host.discard();
  s.ip?.inner.discard();
  s.helper.discard();
  if (!keepSockets) closeResolverSockets(s.sockets);
}
