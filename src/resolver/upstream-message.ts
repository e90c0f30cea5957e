// What forwarding reads and writes on the wire (pure): upstream addresses, which reply belongs to which query,
// which queries are the same, and what a reply's rcode means for the attempt.
import { ipVersion } from '../ip/index.js';
import { sockaddr } from './native-udp.js';

export interface UpstreamAddress {
  key: string; // as configured
  host: string;
  port: number;
  family: 4 | 6;
  /** struct sockaddr for the udpbatch addon; absent for a scoped IPv6 address (dgram serves those). */
  sockaddr?: Buffer;
}

/** Parse `IP`, `IP:port` or `[v6]:port`; undefined when not an address. */
export function parseUpstream(text: string): UpstreamAddress | undefined {
  const s = text.trim();
  let host = s;
  let port = 53;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracket) {
    host = bracket[1]!;
    if (bracket[2]) port = Number(bracket[2]);
  } else if (ipVersion(s.split(':')[0] ?? '') === 4 && s.includes(':')) {
    const [h, p] = s.split(':');
    host = h!;
    port = Number(p);
  }
  const family = ipVersion(host);
  if (family === 0 || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const sa = sockaddr(host, port, family as 4 | 6);
  return { key: s, host, port, family: family as 4 | 6, ...(sa ? { sockaddr: sa } : {}) };
}

export type AttemptOutcome = 'answer' | 'timeout' | 'servfail' | 'refused' | 'error';

/** Compare the first question of `reply` with `question` (raw bytes), ASCII case-insensitively. */
export function sameQuestion(reply: Buffer, question: Buffer): boolean {
  return questionMatches(reply, question, 0, question.length);
}

/** `sameQuestion` against src[start, end) (a query's question in place). */
export function questionMatches(reply: Buffer, src: Buffer, start: number, end: number): boolean {
  const n = end - start;
  if (reply.length < 12 + n) return false;
  for (let i = 0; i < n; i++) {
    let a = reply[12 + i]!;
    let b = src[start + i]!;
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (a !== b) return false;
  }
  return true;
}

/** A reply to `query` (whose question ends at qEnd), once ID and sender have matched. */
export function acceptable(reply: Buffer, query: Buffer, qEnd: number): boolean {
  if (reply.length < 12 || !(reply[2]! & 0x80)) return false;
  const qd = reply.readUInt16BE(4);
  if (qd === 1) return questionMatches(reply, query, 12, qEnd);
  // Some servers drop the question from FORMERR / NOTIMP: ID, address and port still had to match.
  const rcode = reply[3]! & 0xf;
  return qd === 0 && (rcode === 1 || rcode === 4);
}

/** FNV-1a over everything but the ID, the question's letters folded: equal for queries `sameQuery` merges. */
export function queryHash(q: Buffer, qEnd: number): number {
  let h = 0x811c9dc5;
  for (let i = 2; i < 12; i++) h = Math.imul(h ^ q[i]!, 0x01000193);
  for (let i = 12; i < qEnd; i++) h = Math.imul(h ^ (q[i]! | 0x20), 0x01000193); // case folded (and a few others with it: only a hash)
  for (let i = qEnd; i < q.length; i++) h = Math.imul(h ^ q[i]!, 0x01000193);
  return h >>> 0;
}

/** Same flags, counts, question (any case) and records: one upstream answer serves both. */
export function sameQuery(a: Buffer, aEnd: number, b: Buffer, bEnd: number): boolean {
  if (a.length !== b.length || aEnd !== bEnd) return false;
  for (let i = 2; i < 12; i++) if (a[i] !== b[i]) return false;
  if (!questionMatches(a, b, 12, aEnd)) return false;
  for (let i = aEnd; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What a matching reply means for its attempt: an answer (NXDOMAIN too), or a reason to ask another. */
export function classify(reply: Buffer): AttemptOutcome {
  const rcode = reply[3]! & 0xf;
  if (rcode === 2) return 'servfail';
  if (rcode === 5) return 'refused';
  return 'answer';
}

/** An errno from the addon's error reports, as a failure detail. */
export function errnoDetail(errno: number): string {
  if (errno === 111) return 'port unreachable'; // ECONNREFUSED: ICMP port unreachable
  if (errno === 113) return 'host unreachable';
  if (errno === 101) return 'network unreachable';
  return `ICMP error (errno ${errno})`;
}
