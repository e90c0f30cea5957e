// The containers of the overlay networks, as every host sees them (issue 18; the driver that feeds the
// resolver and the VXLAN devices from it is not built yet). Each host publishes its containers' endpoints
// (`<prefix>endpoints/<network id>/<container id>`: names, address, MAC, the host's underlay address) on
// its lease, so a dead host's endpoints disappear with it. Each host keeps a local copy of all of them: read
// once, then kept current by a watch from the revision it was read at, so a query never waits on etcd. When
// the store has compacted past the watch, the copy is read again and the differences are told.
import type { Etcd, Watch } from './etcd.js';

export interface OverlayEndpoint {
  network: string; // network id
  container: string; // container id
  name: string;
  aliases: string[];
  ip: string;
  mac: string;
  /** The underlay address of the host the container lives on (its VTEP). */
  host: string;
}

export type EndpointChange = { type: 'up'; endpoint: OverlayEndpoint } | { type: 'down'; endpoint: OverlayEndpoint };

const keyOf = (prefix: string, network: string, container: string): string => `${prefix}endpoints/${network}/${container}`;

/** Publish a container's endpoint on `lease` (the host's). */
export async function publishEndpoint(etcd: Etcd, prefix: string, e: OverlayEndpoint, lease: string): Promise<void> {
  await etcd.put(keyOf(prefix, e.network, e.container), JSON.stringify(e), lease);
}

export async function withdrawEndpoint(etcd: Etcd, prefix: string, network: string, container: string): Promise<void> {
  await etcd.delete(keyOf(prefix, network, container));
}

/** The local copy of every overlay endpoint, kept current; `onChange` hears each endpoint that came or went. */
export class EndpointBook {
  private readonly byKey = new Map<string, OverlayEndpoint>();
  private watch: Watch | undefined;
  private closed = false;
  /** Whether the watch is connected (the copy is current); false while it reconnects. */
  connected = false;

  constructor(
    private readonly etcd: Etcd,
    private readonly prefix: string,
    private readonly onChange: (changes: EndpointChange[]) => void,
  ) {}

  /** Read everything, tell it, and watch from there. */
  async start(): Promise<void> {
    const revision = await this.resync();
    this.follow(revision + 1);
  }

  /** The endpoints of `network` now (a copy). */
  of(network: string): OverlayEndpoint[] {
    return [...this.byKey.values()].filter((e) => e.network === network);
  }

  all(): OverlayEndpoint[] {
    return [...this.byKey.values()];
  }

  close(): void {
    this.closed = true;
    this.watch?.close();
  }

  /** Read the whole prefix again and tell the differences against the copy; the revision it was read at. */
  private async resync(): Promise<number> {
    const { kvs, revision } = await this.etcd.range(`${this.prefix}endpoints/`);
    const fresh = new Map<string, OverlayEndpoint>();
    for (const kv of kvs) {
      try {
        fresh.set(kv.key, JSON.parse(kv.value) as OverlayEndpoint);
      } catch {
        // not ours: skip
      }
    }
    const changes: EndpointChange[] = [];
    for (const [k, e] of this.byKey) if (!fresh.has(k)) changes.push({ type: 'down', endpoint: e });
    for (const [k, e] of fresh) {
      const old = this.byKey.get(k);
      if (!old || JSON.stringify(old) !== JSON.stringify(e)) {
        if (old) changes.push({ type: 'down', endpoint: old });
        changes.push({ type: 'up', endpoint: e });
      }
    }
    this.byKey.clear();
    for (const [k, e] of fresh) this.byKey.set(k, e);
    if (changes.length > 0) this.onChange(changes);
    return revision;
  }

  private follow(from: number): void {
    if (this.closed) return;
    this.watch = this.etcd.watch(`${this.prefix}endpoints/`, from, {
      onState: (up) => (this.connected = up),
      onEvents: (events) => {
        const changes: EndpointChange[] = [];
        for (const ev of events) {
          const old = this.byKey.get(ev.kv.key);
          if (ev.type === 'delete') {
            if (old) changes.push({ type: 'down', endpoint: old });
            this.byKey.delete(ev.kv.key);
            continue;
          }
          let e: OverlayEndpoint;
          try {
            e = JSON.parse(ev.kv.value) as OverlayEndpoint;
          } catch {
            continue;
          }
          if (old && JSON.stringify(old) === JSON.stringify(e)) continue; // a re-publish on a new lease
          if (old) changes.push({ type: 'down', endpoint: old });
          changes.push({ type: 'up', endpoint: e });
          this.byKey.set(ev.kv.key, e);
        }
        if (changes.length > 0) this.onChange(changes);
      },
      onCompacted: () => {
        // The history the watch needs is gone: read everything again, and watch from there.
        this.watch?.close();
        void this.resync().then(
          (rev) => this.follow(rev + 1),
          () => setTimeout(() => void this.start().catch(() => undefined), 500),
        );
      },
    });
  }
}
