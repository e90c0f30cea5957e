// The resolver's record store (pure): containers' names per network, scoped by who asks, with answer bytes prepared on change.
import { addressBytes } from '../ip/index.js';

export interface ResolverEndpoint {
  network: string; // network name
  ipv4?: string;
  ipv6?: string;
  aliases: string[];
}

export interface ResolverContainer {
  id: string; // 64 hex
  name: string;
  hostname: string;
  endpoints: ResolverEndpoint[]; // user-defined networks only
  /** `--link NAME:ALIAS` on user networks: ALIAS is visible to this container only. */
  links: { alias: string; target: string /* container name */ }[];
}

/** What a name resolves to for one asker: addresses plus their answer records, pre-encoded. */
export interface NameRecords {
  ipv4: string[];
  ipv6: string[];
  /** A records, each `C0 0C | type | class | TTL | rdlength | rdata`: owner is a pointer to the question name. */
  a: Buffer[];
  /** AAAA records, same layout. */
  aaaa: Buffer[];
}

export interface PtrRecord {
  /** Docker: `<name>.<network>`; Podman: the container's names, each one answer. */
  targets: string[];
  /** PTR records with owner pointer 0xC00C, ready to copy; null when a target is no valid DNS name (SERVFAIL). */
  rrs: Buffer[] | null;
}

/** Docker's TTL for container names. */
export const TTL = 600;

/**
 * How names are formed. `docker`: name, aliases, short ID and hostname, each also `<key>.<network>`; PTR ->
 * `<name>.<network>`. `podman` (aardvark-dns's rules): the names netavark lists (name and aliases), each
 * also `<key>.dns.podman` (Podman's search domain); PTR -> every one of those names.
 */
export type NameStyle = 'docker' | 'podman';
export const PODMAN_DOMAIN = 'dns.podman';

export interface RecordStoreOptions {
  ttl?: number;
  style?: NameStyle;
}

/**
 * An asker that is no container: a client on the host (or anywhere) asking a network's own listener
 * (Podman's gateway address). It sees that network's names only.
 */
export function networkAsker(network: string): string {
  return `\0${network}`;
}
const TYPE_A = 1;
const TYPE_AAAA = 28;
const TYPE_PTR = 12;
const CLASS_IN = 1;

/** Lower-case a name and drop one trailing dot; the form every lookup key takes. */
export function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** The PTR owner name of an address (`4.3.2.1.in-addr.arpa`, nibbles `.ip6.arpa`), lower case, no trailing dot. */
export function reverseName(address: string): string | undefined {
  const bytes = addressBytes(address);
  if (!bytes) return undefined;
  if (bytes.length === 4) return `${bytes[3]}.${bytes[2]}.${bytes[1]}.${bytes[0]}.in-addr.arpa`;
  const v6 = bytes;
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) {
    const b = v6[i]!;
    nibbles.push((b & 0xf).toString(16), (b >> 4).toString(16));
  }
  return `${nibbles.join('.')}.ip6.arpa`;
}

/** Encode a domain name in wire format (uncompressed); null when a label is over 63 bytes or the name over 255. */
export function encodeName(name: string): Buffer | null {
  const labels = name.split('.').filter((l) => l !== '');
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, 'latin1');
    if (bytes.length > 63) return null;
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  const wire = Buffer.concat(parts);
  return wire.length > 255 ? null : wire;
}

function encodeRR(type: number, rdata: Buffer | number[], ttl: number): Buffer {
  const rr = Buffer.alloc(12 + rdata.length);
  rr.writeUInt16BE(0xc00c, 0);
  rr.writeUInt16BE(type, 2);
  rr.writeUInt16BE(CLASS_IN, 4);
  rr.writeUInt32BE(ttl, 6);
  rr.writeUInt16BE(rdata.length, 10);
  (Buffer.isBuffer(rdata) ? rdata : Buffer.from(rdata)).copy(rr, 12);
  return rr;
}

// Records are immutable once built, so identical addresses (with the same TTL) share one Buffer.
const rrCache = new Map<string, Buffer>();
function addressRR(address: string, ttl: number): { rr: Buffer; family: 4 | 6 } | undefined {
  const key = ttl === TTL ? address : `${ttl}/${address}`;
  const cached = rrCache.get(key);
  if (cached) return { rr: cached, family: cached.length === 16 ? 4 : 6 };
  if (rrCache.size > 100_000) rrCache.clear();
  const bytes = addressBytes(address);
  if (!bytes) return undefined;
  const v4 = bytes.length === 4;
  const rr = encodeRR(v4 ? TYPE_A : TYPE_AAAA, bytes, ttl);
  rrCache.set(key, rr);
  return { rr, family: v4 ? 4 : 6 };
}

function makeRecords(ipv4: string[], ipv6: string[], ttl: number): NameRecords {
  const a: Buffer[] = [];
  const aaaa: Buffer[] = [];
  const v4: string[] = [];
  const v6: string[] = [];
  for (const ip of ipv4) {
    const r = addressRR(ip, ttl);
    if (r?.family === 4) (a.push(r.rr), v4.push(ip));
  }
  for (const ip of ipv6) {
    const r = addressRR(ip, ttl);
    if (r?.family === 6) (aaaa.push(r.rr), v6.push(ip));
  }
  return { ipv4: v4, ipv6: v6, a, aaaa };
}

function mergeRecords(list: NameRecords[], ttl: number): NameRecords {
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  for (const r of list) {
    for (const ip of r.ipv4) v4.add(ip);
    for (const ip of r.ipv6) v6.add(ip);
  }
  return makeRecords([...v4], [...v6], ttl);
}

/** One network's view. Updated in place, name by name, within one synchronous call. */
interface NetworkTable {
  readonly name: string;
  readonly members: Set<string>; // container ids
  /** normalized name -> container id -> that container's addresses on this network. */
  readonly contrib: Map<string, Map<string, { ipv4?: string | undefined; ipv6?: string | undefined }>>;
  /** normalized name -> prepared answer; what lookups read. */
  readonly names: Map<string, NameRecords>;
  readonly reverse: Map<string, PtrRecord & { owner: string }>;
}

/** Per asker: the tables of its networks (stable references), its link aliases, a cache of multi-network merges. */
interface AskerView {
  tables: NetworkTable[];
  links: Map<string, NameRecords>;
  merged: Map<string, NameRecords | null>;
  mergedGen: number;
}

/** The names a container answers to on one network, in order (the first is the PTR target's). */
function namesOf(c: ResolverContainer, e: ResolverEndpoint, style: NameStyle): string[] {
  return style === 'podman' ? [c.name, ...e.aliases] : [c.name, ...e.aliases, c.id.slice(0, 12), c.hostname];
}

/** Every lookup key of one container on one network: its names, each also `.<network>` (Docker) or `.dns.podman`. */
function keysOf(c: ResolverContainer, e: ResolverEndpoint, style: NameStyle): Set<string> {
  const keys = new Set<string>();
  const domain = style === 'podman' ? PODMAN_DOMAIN : normalizeName(e.network);
  for (const n of namesOf(c, e, style)) {
    const k = normalizeName(n);
    if (k === '') continue;
    keys.add(k);
    keys.add(`${k}.${domain}`);
  }
  return keys;
}

export class RecordStore {
  private readonly containers = new Map<string, ResolverContainer>();
  private readonly byName = new Map<string, string>(); // normalized container name -> id
  private readonly tables = new Map<string, NetworkTable>();
  private readonly views = new Map<string, AskerView>();
  private readonly linking = new Set<string>(); // ids of containers with links
  private generation = 0;
  private readonly ttl: number;
  private readonly style: NameStyle;

  constructor(opts: RecordStoreOptions = {}) {
    this.ttl = opts.ttl ?? TTL;
    this.style = opts.style ?? 'docker';
  }

  /** Register or replace a container. Synchronous, name by name: a name that stays is never missing. */
  upsert(c: ResolverContainer): void {
    const copy: ResolverContainer = {
      id: c.id,
      name: c.name,
      hostname: c.hostname,
      endpoints: c.endpoints.map((e) => ({ ...e, aliases: [...e.aliases] })),
      links: c.links.map((l) => ({ ...l })),
    };
    const old = this.containers.get(c.id);
    const touched = new Map<NetworkTable, Set<string>>();
    if (old) {
      this.withdraw(old, touched);
      if (this.byName.get(normalizeName(old.name)) === old.id) this.byName.delete(normalizeName(old.name));
    }
    this.containers.set(c.id, copy);
    this.byName.set(normalizeName(copy.name), copy.id);
    this.publish(copy, touched);
    if (copy.links.length > 0) this.linking.add(copy.id);
    else this.linking.delete(copy.id);
    this.commit(touched, copy);
  }

  /** Forget a container: its names disappear for everyone. Returns whether it was known. */
  remove(id: string): boolean {
    const old = this.containers.get(id);
    if (!old) return false;
    const touched = new Map<NetworkTable, Set<string>>();
    this.withdraw(old, touched);
    this.containers.delete(id);
    if (this.byName.get(normalizeName(old.name)) === id) this.byName.delete(normalizeName(old.name));
    this.linking.delete(id);
    this.views.delete(id);
    this.commit(touched, undefined);
    return true;
  }

  get(id: string): ResolverContainer | undefined {
    return this.containers.get(id);
  }

  /** Networks the container is attached to, in endpoint order. */
  networksOf(id: string): string[] {
    return this.containers.get(id)?.endpoints.map((e) => e.network) ?? [];
  }

  /** Addresses a normalized name has for this asker (its link aliases first, then its networks), or undefined. */
  lookup(askerId: string, name: string): NameRecords | undefined {
    const view = this.views.get(askerId);
    if (!view) return askerId.charCodeAt(0) === 0 ? this.tables.get(askerId.slice(1))?.names.get(name) : undefined;
    const linked = view.links.get(name);
    if (linked) return linked;
    const tables = view.tables;
    if (tables.length === 1) return tables[0]!.names.get(name);
    return this.lookupMany(view, name);
  }

  /** The PTR record for a normalized reverse name, if the address belongs to a container on one of the asker's networks. */
  lookupReverse(askerId: string, name: string): PtrRecord | undefined {
    const view = this.views.get(askerId);
    if (!view) return askerId.charCodeAt(0) === 0 ? this.tables.get(askerId.slice(1))?.reverse.get(name) : undefined;
    for (const t of view.tables) {
      const r = t.reverse.get(name);
      if (r) return r;
    }
    return undefined;
  }

  private lookupMany(view: AskerView, name: string): NameRecords | undefined {
    if (view.mergedGen !== this.generation) {
      view.merged.clear();
      view.mergedGen = this.generation;
    }
    const cached = view.merged.get(name);
    if (cached !== undefined) return cached ?? undefined;
    const found: NameRecords[] = [];
    for (const t of view.tables) {
      const r = t.names.get(name);
      if (r) found.push(r);
    }
    const result = found.length === 0 ? null : found.length === 1 ? found[0]! : mergeRecords(found, this.ttl);
    if (view.merged.size > 10_000) view.merged.clear();
    view.merged.set(name, result);
    return result ?? undefined;
  }

  private table(net: string): NetworkTable {
    let t = this.tables.get(net);
    if (!t) this.tables.set(net, (t = { name: net, members: new Set(), contrib: new Map(), names: new Map(), reverse: new Map() }));
    return t;
  }

  /** Take a container's contributions out of its networks' tables (the prepared answers are redone in commit). */
  private withdraw(c: ResolverContainer, touched: Map<NetworkTable, Set<string>>): void {
    for (const e of c.endpoints) {
      const t = this.tables.get(e.network);
      if (!t) continue;
      t.members.delete(c.id);
      const keys = touched.get(t) ?? new Set<string>();
      touched.set(t, keys);
      for (const k of keysOf(c, e, this.style)) {
        t.contrib.get(k)?.delete(c.id);
        keys.add(k);
      }
      for (const ip of [e.ipv4, e.ipv6]) {
        const rev = ip ? reverseName(ip) : undefined;
        if (rev && t.reverse.get(rev)?.owner === c.id) t.reverse.delete(rev);
      }
    }
  }

  private publish(c: ResolverContainer, touched: Map<NetworkTable, Set<string>>): void {
    for (const e of c.endpoints) {
      const t = this.table(e.network);
      t.members.add(c.id);
      const keys = touched.get(t) ?? new Set<string>();
      touched.set(t, keys);
      for (const k of keysOf(c, e, this.style)) {
        let m = t.contrib.get(k);
        if (!m) t.contrib.set(k, (m = new Map()));
        m.set(c.id, { ipv4: e.ipv4, ipv6: e.ipv6 });
        keys.add(k);
      }
      const targets = this.style === 'podman' ? [...new Set(namesOf(c, e, 'podman').map(normalizeName).filter((n) => n !== ''))] : [`${c.name}.${e.network}`];
      const wires = targets.map(encodeName);
      const rrs = wires.every((w) => w !== null) ? wires.map((w) => encodeRR(TYPE_PTR, w!, this.ttl)) : null;
      for (const ip of [e.ipv4, e.ipv6]) {
        const rev = ip ? reverseName(ip) : undefined;
        if (rev) t.reverse.set(rev, { owner: c.id, targets, rrs });
      }
    }
  }

  /** Redo the prepared answers of the touched names, refresh the changed asker's view and all link aliases. */
  private commit(touched: Map<NetworkTable, Set<string>>, changed: ResolverContainer | undefined): void {
    this.generation++;
    for (const [t, keys] of touched) {
      for (const k of keys) {
        const m = t.contrib.get(k);
        if (!m || m.size === 0) {
          t.contrib.delete(k);
          t.names.delete(k);
          continue;
        }
        const v4 = new Set<string>();
        const v6 = new Set<string>();
        for (const a of m.values()) {
          if (a.ipv4) v4.add(a.ipv4);
          if (a.ipv6) v6.add(a.ipv6);
        }
        t.names.set(k, makeRecords([...v4], [...v6], this.ttl));
      }
      if (t.members.size === 0) this.tables.delete(t.name);
    }
    if (changed) {
      const nets = [...new Set(changed.endpoints.map((e) => e.network))];
      const old = this.views.get(changed.id);
      this.views.set(changed.id, { tables: nets.map((n) => this.table(n)), links: old?.links ?? new Map(), merged: new Map(), mergedGen: this.generation });
    }
    // Link aliases follow their targets' addresses: recompute for every linking container (few, small).
    for (const id of this.linking) {
      const c = this.containers.get(id);
      const view = this.views.get(id);
      if (c && view) view.links = this.buildLinks(c);
    }
  }

  private buildLinks(c: ResolverContainer): Map<string, NameRecords> {
    const out = new Map<string, NameRecords>();
    const mine = new Set(c.endpoints.map((e) => e.network));
    for (const link of c.links) {
      const targetId = this.byName.get(normalizeName(link.target));
      const target = targetId ? this.containers.get(targetId) : undefined;
      if (!target) continue;
      const v4: string[] = [];
      const v6: string[] = [];
      for (const e of target.endpoints) {
        if (!mine.has(e.network)) continue;
        if (e.ipv4) v4.push(e.ipv4);
        if (e.ipv6) v6.push(e.ipv6);
      }
      if (v4.length + v6.length === 0) continue;
      const key = normalizeName(link.alias);
      const prev = out.get(key);
      const rec = makeRecords([...new Set(v4)], [...new Set(v6)], this.ttl);
      out.set(key, prev ? mergeRecords([prev, rec], this.ttl) : rec);
    }
    return out;
  }
}
