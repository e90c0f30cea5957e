// The forwarder's bookkeeping: jobs by the upstream ID of each UDP attempt, and identical queries in flight.
import { randomFillSync } from 'node:crypto';

const ID_SPACE = 0x10000;
/** UDP attempts (IDs) in flight at once: half the ID space, so a random free ID is found in ~2 draws. */
export const MAX_ATTEMPTS = ID_SPACE / 2;
const SAME_BUCKETS = 4096;

// Query IDs for upstreams come from the CSPRNG, drawn in bulk: one call per 4096 queries, not one each.
const idPool = Buffer.alloc(8192);
let idPos = idPool.length;
export function randomId(): number {
  if (idPos >= idPool.length) {
    randomFillSync(idPool);
    idPos = 0;
  }
  const id = (idPool[idPos]! << 8) | idPool[idPos + 1]!;
  idPos += 2;
  return id;
}

/** What the table keeps on a job: its attempts' IDs and its place in a chain of same-hash queries. */
export interface Tracked<J> {
  /** The newest attempt's ID (-1: none), the older ones' (some may have ended), how many are out. */
  id: number;
  older: number[] | undefined;
  live: number;
  hash: number;
  nextSame: J | undefined;
}

/**
 * Plain arrays, not Maps: a Map that is added to and deleted from for every query is rehashed often, and V8
 * keeps a link from each retired table to its successor. Once a full GC had moved a live table to the old
 * space, that chain of dead tables kept every later table, and the attempts in them, alive through
 * scavenges (measured: scavenges 0.3 -> 14 ms, forwarding down by a third; bench/RESULTS.md).
 */
export class AttemptTable<J extends Tracked<J>, S> {
  /** Attempts in flight. */
  count = 0;
  private byId: (J | undefined)[] | undefined; // allocated on the first attempt
  private upOf: Uint8Array | undefined;
  private sockOf: (S | undefined)[] | undefined;
  private readonly same: (J | undefined)[] = new Array<J | undefined>(SAME_BUCKETS).fill(undefined);

  /** A new attempt of `job` to its upstream number `up`, leaving on `sock`: its ID, random and unique here. */
  add(job: J, up: number, sock: S): number {
    if (!this.byId) {
      this.byId = new Array<J | undefined>(ID_SPACE).fill(undefined);
      this.upOf = new Uint8Array(ID_SPACE);
      this.sockOf = new Array<S | undefined>(ID_SPACE).fill(undefined);
    }
    const byId = this.byId;
    let id = randomId();
    while (byId[id] !== undefined) id = randomId(); // at most half the IDs are taken
    if (job.id >= 0) (job.older ??= []).push(job.id);
    job.id = id;
    job.live++;
    byId[id] = job;
    this.upOf![id] = up;
    this.sockOf![id] = sock;
    this.count++;
    return id;
  }

  /** The job whose attempt `id` left on `sock` (a reply must come back on the same socket). */
  get(id: number, sock: S): J | undefined {
    const job = this.byId?.[id];
    return job !== undefined && this.sockOf![id] === sock ? job : undefined;
  }

  /** Which of its job's upstreams attempt `id` went to. */
  upstreamOf(id: number): number {
    return this.upOf![id]!;
  }

  /** Whether attempt `id` is still `job`'s. */
  holds(job: J, id: number): boolean {
    return this.byId?.[id] === job;
  }

  /** Take one of `job`'s attempts off the list (the job stays, with its other attempts). */
  release(job: J, id: number): void {
    if (this.byId?.[id] !== job) return; // ended before, and the ID may be another job's by now
    this.byId[id] = undefined;
    this.sockOf![id] = undefined;
    this.count--;
    job.live--;
    if (job.id === id) job.id = -1;
  }

  /** Every attempt of `job`, off the list. */
  releaseAll(job: J): void {
    if (job.id >= 0) this.release(job, job.id);
    if (job.older) for (const id of job.older) this.release(job, id);
    job.id = -1;
    job.older = undefined;
  }

  /** `fn` for each attempt in flight (with its socket); `fn` may release attempts. */
  forEach(fn: (job: J, id: number, sock: S) => void): void {
    const byId = this.byId;
    if (!byId) return;
    for (let id = 0; id < ID_SPACE; id++) {
      const job = byId[id];
      if (job !== undefined) fn(job, id, this.sockOf![id]!);
    }
  }

  /** The first job of the chain that jobs with `hash` are in (follow `nextSame`; compare `hash` and more). */
  chain(hash: number): J | undefined {
    return this.same[hash & (SAME_BUCKETS - 1)];
  }

  link(job: J): void {
    const b = job.hash & (SAME_BUCKETS - 1);
    job.nextSame = this.same[b];
    this.same[b] = job;
  }

  unlink(job: J): void {
    const b = job.hash & (SAME_BUCKETS - 1);
    let j = this.same[b];
    if (j === job) this.same[b] = job.nextSame;
    else {
      while (j !== undefined && j.nextSame !== job) j = j.nextSame;
      if (j) j.nextSame = job.nextSame;
    }
    job.nextSame = undefined;
  }

  /** Every job still linked (TCP ones included), for closing. */
  linked(): J[] {
    const out: J[] = [];
    for (const head of this.same) for (let j = head; j !== undefined; j = j.nextSame) out.push(j);
    return out;
  }
}
