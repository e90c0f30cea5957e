// Names and references: Docker's name rule, generated names, and resolving a name / ID / ID prefix.
import crypto from 'node:crypto';
import { DnsnetError } from '../errors.js';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function validateName(kind: 'container' | 'network', name: string): void {
  if (!NAME_RE.test(name) || name.length > 128) {
    throw new DnsnetError('invalid', `invalid ${kind} name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least 2 characters`);
  }
}

export function newId(): string {
  return crypto.randomBytes(32).toString('hex');
}

const ADJECTIVES = ['brave', 'calm', 'eager', 'fervent', 'gentle', 'happy', 'jolly', 'keen', 'lucid', 'merry', 'nifty', 'quirky', 'serene', 'tender', 'vibrant', 'witty'];
const NOUNS = ['bohr', 'curie', 'dijkstra', 'euler', 'fermi', 'gauss', 'hopper', 'knuth', 'lovelace', 'noether', 'pascal', 'ritchie', 'shannon', 'turing', 'wozniak', 'yalow'];

export function generateName(taken: (name: string) => boolean): string {
  for (let i = 0; ; i++) {
    const a = ADJECTIVES[crypto.randomInt(ADJECTIVES.length)];
    const n = NOUNS[crypto.randomInt(NOUNS.length)];
    const name = i < 20 ? `${a}_${n}` : `${a}_${n}${crypto.randomInt(1000)}`;
    if (!taken(name)) return name;
  }
}

/** Find by exact name, exact ID, then a unique ID prefix of 3+ characters. */
export function findByRef<T extends { id: string; name: string }>(items: Iterable<T>, ref: string, kind: string): T {
  const list = [...items];
  const r = ref.startsWith('/') ? ref.slice(1) : ref;
  const byName = list.find((x) => x.name === r);
  if (byName) return byName;
  const byId = list.find((x) => x.id === r);
  if (byId) return byId;
  if (r.length >= 3 && /^[0-9a-f]+$/.test(r)) {
    const hits = list.filter((x) => x.id.startsWith(r));
    if (hits.length === 1) return hits[0] as T;
    if (hits.length > 1) throw new DnsnetError('invalid', `${kind} ${ref} is ambiguous: ${hits.length} IDs start with it`);
  }
  throw new DnsnetError('not-found', `no such ${kind}: ${ref}`);
}
