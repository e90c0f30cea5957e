// A local copy of every key under a prefix of etcd, kept current by a watch: read once, then watched from
// the revision it was read at, so a reader never waits on etcd. When the store has compacted past the
// watch, the prefix is read again and the differences are told. Values are JSON; one that does not parse
// is not ours and is skipped. Used for the overlay networks (../daemon/cluster.ts) and their endpoints
// (endpoints.ts).
import type { Etcd, Watch } from './etcd.js';

export type BookChange<T> = { type: 'up' | 'down'; key: string; value: T };

export class Book<T> {
  private readonly byKey = new Map<string, T>();
  private readonly text = new Map<string, string>();
  private watch: Watch | undefined;
  private closed = false;
  /** Whether the watch is connected (the copy is current); false while it reconnects. */
  connected = false;

  constructor(
    private readonly etcd: Etcd,
    private readonly prefix: string,
    private readonly onChange: (changes: BookChange<T>[]) => void,
  ) {}

  /** Read everything, tell it, and watch from there. */
  async start(): Promise<void> {
    const revision = await this.resync();
    this.follow(revision + 1);
  }

  all(): T[] {
    return [...this.byKey.values()];
  }

  close(): void {
    this.closed = true;
    this.watch?.close();
  }

  /** Put `value` (as `raw`) under `key`; the changes it makes. A value equal to the one held (a re-publish on a new lease) changes nothing. */
  private set(key: string, raw: string, changes: BookChange<T>[]): void {
    if (this.text.get(key) === raw) return;
    let value: T;
    try {
      value = JSON.parse(raw) as T;
    } catch {
      return; // not ours
    }
    this.drop(key, changes);
    this.byKey.set(key, value);
    this.text.set(key, raw);
    changes.push({ type: 'up', key, value });
  }

  private drop(key: string, changes: BookChange<T>[]): void {
    const old = this.byKey.get(key);
    if (old === undefined) return;
    this.byKey.delete(key);
    this.text.delete(key);
    changes.push({ type: 'down', key, value: old });
  }

  /** Read the whole prefix again and tell the differences against the copy; the revision it was read at. */
  private async resync(): Promise<number> {
    const { kvs, revision } = await this.etcd.range(this.prefix);
    const changes: BookChange<T>[] = [];
    const fresh = new Set(kvs.map((kv) => kv.key));
    for (const key of [...this.byKey.keys()]) if (!fresh.has(key)) this.drop(key, changes);
    for (const kv of kvs) this.set(kv.key, kv.value, changes);
    if (changes.length > 0) this.onChange(changes);
    return revision;
  }

  private follow(from: number): void {
    if (this.closed) return;
    this.watch = this.etcd.watch(this.prefix, from, {
      onState: (up) => (this.connected = up),
      onEvents: (events) => {
        const changes: BookChange<T>[] = [];
        for (const ev of events) {
          if (ev.type === 'delete') this.drop(ev.kv.key, changes);
          else this.set(ev.kv.key, ev.kv.value, changes);
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
