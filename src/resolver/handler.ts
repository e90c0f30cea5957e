// The query handler (pure): query bytes + asker -> reply bytes, forward, or drop. Local hits never go through a full DNS codec.
import type { RecordStore } from './records.js';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;
const TYPE_PTR = 12;
const TYPE_A = 1;
const TYPE_AAAA = 28;
const TYPE_OPT = 41;
const TYPE_ANY = 255;
const CLASS_IN = 1;
/** The UDP payload size we advertise in our OPT record (DNS flag day 2020). */
export const EDNS_UDP_SIZE = 1232;
const MAX_TCP = 65535;

export type Transport = 'udp' | 'tcp';

export interface Edns {
  udpSize: number;
  version: number;
  /** DNSSEC OK: copied into our OPT (RFC 3225 3), though we serve no DNSSEC records. */
  do: boolean;
}

/** A query that passed the checks: one question, parsed; `qEnd` is the offset just after the question. */
export interface ParsedQuery {
  id: number;
  flags: number;
  /** Lower-cased name without trailing dot; '' for the root. */
  name: string;
  /** false when a label holds a '.' or the name is otherwise not mappable to our keys: never a local hit. */
  plainName: boolean;
  qtype: number;
  qclass: number;
  qEnd: number;
  edns: Edns | null;
}

export type HandlerResult =
  | { action: 'reply'; reply: Buffer; rcode: number; local: boolean; truncated: boolean; qtype: number }
  | { action: 'forward'; query: ParsedQuery }
  | { action: 'drop'; reason: string };

type ParseOutcome =
  | { kind: 'ok'; query: ParsedQuery }
  | { kind: 'drop'; reason: string }
  | { kind: 'error'; rcode: number; qEnd: number; edns: Edns | null };

// Scratch space for the lower-cased dotted name: one native string conversion per query.
const scratch = Buffer.alloc(512);

/** Read a question name at `off` (no compression allowed there). Returns the end offset or -1. */
function readQuestionName(msg: Buffer, off: number, out: { name: string; plain: boolean }): number {
  let plain = true;
  let n = 0; // bytes written to scratch
  const size = msg.length;
  for (;;) {
    if (off >= size) return -1;
    const len = msg[off]!;
    if (len === 0) {
      off++;
      break;
    }
    if (len > 63) return -1; // compression pointer or reserved label type: not valid in a lone question
    const end = off + 1 + len;
    if (end > size || n + len + 1 > 255) return -1;
    if (n > 0) scratch[n++] = 0x2e;
    for (let i = off + 1; i < end; i++) {
      let b = msg[i]!;
      if (b >= 0x41 && b <= 0x5a) b |= 0x20;
      else if (b === 0x2e || b < 0x21 || b > 0x7e) plain = false;
      scratch[n++] = b;
    }
    off = end;
  }
  out.name = n === 0 ? '' : scratch.toString('latin1', 0, n);
  out.plain = plain;
  return off;
}

/** Copy bytes without Buffer.copy's argument checks: answers are a few dozen bytes. */
function copyBytes(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): number {
  for (let i = start; i < end; i++) dst[at++] = src[i]!;
  return end - start;
}

/** Skip a (possibly compressed) name in a resource record. Returns the end offset or -1. */
function skipName(msg: Buffer, off: number): number {
  let total = 0;
  for (;;) {
    if (off >= msg.length) return -1;
    const len = msg[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= msg.length ? off + 2 : -1;
    if (len > 63) return -1;
    off += len + 1;
    total += len + 1;
    if (total > 255) return -1;
  }
}

/** The OPT record at `off` (its TYPE field): EDNS size, version, DO bit. */
function readOpt(msg: Buffer, off: number): Edns {
  return { udpSize: msg.readUInt16BE(off + 2), version: msg[off + 5]!, do: (msg[off + 6]! & 0x80) !== 0 };
}

/**
 * The OPT record of a query we refuse (NOTIMP, FORMERR), found by walking what reads cleanly: an EDNS client
 * gets an OPT back even then (RFC 6891 7), or it takes us for a server without EDNS ("retry with +noedns").
 */
function findOpt(msg: Buffer): Edns | null {
  const qd = msg.readUInt16BE(4);
  const before = msg.readUInt16BE(6) + msg.readUInt16BE(8);
  const total = before + msg.readUInt16BE(10);
  let off = 12;
  for (let i = 0; i < qd; i++) {
    off = skipName(msg, off);
    if (off < 0 || off + 4 > msg.length) return null;
    off += 4;
  }
  for (let i = 0; i < total; i++) {
    const nameStart = off;
    off = skipName(msg, off);
    if (off < 0 || off + 10 > msg.length) return null;
    if (i >= before && msg.readUInt16BE(off) === TYPE_OPT && msg[nameStart] === 0) return readOpt(msg, off);
    off += 10 + msg.readUInt16BE(off + 8);
  }
  return null;
}

/** Check the header, the one question and any OPT record. */
export function parseQuery(msg: Buffer): ParseOutcome {
  if (msg.length < 12) return { kind: 'drop', reason: 'short' };
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000) return { kind: 'drop', reason: 'qr' };
  const qd = msg.readUInt16BE(4);
  const opcode = (flags >> 11) & 0xf;
  const out = { name: '', plain: true };
  if (opcode !== 0) {
    // Echo the question when it reads cleanly, as resolvers expect; else header only.
    let qEnd = qd === 1 ? readQuestionName(msg, 12, out) : -1;
    if (qEnd >= 0 && qEnd + 4 <= msg.length) qEnd += 4;
    else qEnd = 12;
    return { kind: 'error', rcode: RCODE.NOTIMP, qEnd, edns: findOpt(msg) };
  }
  if (qd !== 1) return { kind: 'error', rcode: RCODE.FORMERR, qEnd: 12, edns: findOpt(msg) };
  let off = readQuestionName(msg, 12, out);
  if (off < 0 || off + 4 > msg.length) return { kind: 'error', rcode: RCODE.FORMERR, qEnd: 12, edns: null };
  const qtype = msg.readUInt16BE(off);
  const qclass = msg.readUInt16BE(off + 2);
  off += 4;
  const qEnd = off;
  // Skip answer and authority records; look for OPT among the additional ones.
  const an = msg.readUInt16BE(6);
  const ns = msg.readUInt16BE(8);
  const ar = msg.readUInt16BE(10);
  let edns: Edns | null = null;
  let badvers = false;
  const records = an + ns + ar;
  for (let i = 0; i < records; i++) {
    const nameStart = off;
    off = skipName(msg, off);
    if (off < 0 || off + 10 > msg.length) return { kind: 'error', rcode: RCODE.FORMERR, qEnd: 12, edns };
    const type = msg.readUInt16BE(off);
    const rdlen = msg.readUInt16BE(off + 8);
    const rdEnd = off + 10 + rdlen;
    if (rdEnd > msg.length) return { kind: 'error', rcode: RCODE.FORMERR, qEnd: 12, edns };
    if (type === TYPE_OPT && i >= an + ns) {
      // RFC 6891 6.1.1: one OPT at most, owner the root.
      if (edns || msg[nameStart] !== 0) return { kind: 'error', rcode: RCODE.FORMERR, qEnd, edns: edns ?? { udpSize: 512, version: 0, do: false } };
      edns = readOpt(msg, off);
      if (edns.version > 0) badvers = true;
    }
    off = rdEnd;
  }
  if (badvers) return { kind: 'error', rcode: RCODE.BADVERS, qEnd, edns };
  return { kind: 'ok', query: { id: msg.readUInt16BE(0), flags, name: out.name, plainName: out.plain, qtype, qclass, qEnd, edns } };
}

function udpLimit(edns: Edns | null): number {
  if (!edns) return 512;
  return Math.min(Math.max(512, edns.udpSize), MAX_TCP);
}

/** Write header + echoed question (+ answers) + OPT. `answers` are complete pre-encoded records. */
function buildReply(msg: Buffer, qEnd: number, qdcount: number, rcode: number, edns: Edns | null, answers: readonly Buffer[], transport: Transport, aa: boolean): { reply: Buffer; truncated: boolean } {
  const optLen = edns ? 11 : 0;
  const limit = transport === 'tcp' ? MAX_TCP : udpLimit(edns);
  const qLen = qEnd - 12;
  let size = 12 + qLen + optLen;
  let count = answers.length;
  let truncated = false;
  let order: readonly Buffer[] = answers;
  if (count > 1) order = shuffled(answers);
  for (let i = 0; i < count; i++) {
    const len = order[i]!.length;
    if (size + len > limit) {
      count = i;
      truncated = true;
      break;
    }
    size += len;
  }
  const out = Buffer.allocUnsafe(size);
  const qflags = msg.readUInt16BE(2);
  // QR, opcode as asked, AA for our own names, TC when cut, RD copied, RA set, CD copied, low rcode bits.
  let flags = 0x8000 | (qflags & 0x7800) | (qflags & 0x0100) | 0x0080 | (qflags & 0x0010) | (rcode & 0xf);
  if (aa) flags |= 0x0400;
  if (truncated) flags |= 0x0200;
  out.writeUInt16BE(msg.readUInt16BE(0), 0);
  out.writeUInt16BE(flags, 2);
  out.writeUInt16BE(qdcount, 4);
  out.writeUInt16BE(count, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(edns ? 1 : 0, 10);
  let off = 12;
  if (qLen > 0) off += copyBytes(msg, 12, qEnd, out, off);
  for (let i = 0; i < count; i++) {
    const rr = order[i]!;
    off += copyBytes(rr, 0, rr.length, out, off);
  }
  if (edns) {
    out[off] = 0; // root owner
    out.writeUInt16BE(TYPE_OPT, off + 1);
    out.writeUInt16BE(EDNS_UDP_SIZE, off + 3);
    out[off + 5] = rcode >> 4; // extended rcode (BADVERS = 16 -> 1)
    out[off + 6] = 0; // version 0
    out.writeUInt16BE(edns.do ? 0x8000 : 0, off + 7); // DO copied from the query (RFC 3225 3)
    out.writeUInt16BE(0, off + 9);
  }
  return { reply: out, truncated };
}

function shuffled(list: readonly Buffer[]): Buffer[] {
  const a = list.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

/** A reply carrying only an rcode (SERVFAIL after failed forwarding, REFUSED when over the limit). */
export function buildRcodeReply(msg: Buffer, query: ParsedQuery, rcode: number, transport: Transport): Buffer {
  return buildReply(msg, query.qEnd, 1, rcode, query.edns ? { ...query.edns, version: 0 } : null, [], transport, false).reply;
}

const NO_ANSWERS: readonly Buffer[] = [];

/**
 * Decide what to do with one query from `asker` (a container id). Never throws on client input.
 * Local answers: A/AAAA/other types for names the asker can see, PTR for their addresses; all else forwards.
 */
export function handleQuery(msg: Buffer, asker: string, store: RecordStore, transport: Transport): HandlerResult {
  const parsed = parseQuery(msg);
  if (parsed.kind === 'drop') return { action: 'drop', reason: parsed.reason };
  if (parsed.kind === 'error') {
    const qd = parsed.qEnd > 12 ? 1 : 0;
    const { reply, truncated } = buildReply(msg, parsed.qEnd, qd, parsed.rcode, parsed.edns, NO_ANSWERS, transport, false);
    return { action: 'reply', reply, rcode: parsed.rcode, local: true, truncated, qtype: 0 };
  }
  const q = parsed.query;
  if (q.qclass === CLASS_IN && q.plainName) {
    if (q.qtype === TYPE_PTR && (q.name.endsWith('.in-addr.arpa') || q.name.endsWith('.ip6.arpa'))) {
      const ptr = store.lookupReverse(asker, q.name);
      // A target that is no valid DNS name (a label over 63 bytes) cannot be answered: SERVFAIL, as Docker
      // does (moby#46928), rather than a cut name that resolves to nothing.
      if (ptr) return ptr.rrs ? localReply(msg, q, ptr.rrs, transport) : rcodeReply(msg, q, RCODE.SERVFAIL, transport);
    }
    const rec = store.lookup(asker, q.name);
    if (rec) {
      // ANY: the name's addresses (RFC 8482 lets a server answer ANY with a subset).
      const answers = q.qtype === TYPE_A ? rec.a : q.qtype === TYPE_AAAA ? rec.aaaa : q.qtype === TYPE_ANY ? anyAnswers(rec.a, rec.aaaa) : NO_ANSWERS;
      return localReply(msg, q, answers, transport);
    }
  }
  return { action: 'forward', query: q };
}

function anyAnswers(a: readonly Buffer[], aaaa: readonly Buffer[]): readonly Buffer[] {
  return aaaa.length === 0 ? a : a.length === 0 ? aaaa : [...a, ...aaaa];
}

function rcodeReply(msg: Buffer, q: ParsedQuery, rcode: number, transport: Transport): HandlerResult {
  return { action: 'reply', reply: buildRcodeReply(msg, q, rcode, transport), rcode, local: true, truncated: false, qtype: q.qtype };
}

function localReply(msg: Buffer, q: ParsedQuery, answers: readonly Buffer[], transport: Transport): HandlerResult {
  const { reply, truncated } = buildReply(msg, q.qEnd, 1, RCODE.NOERROR, q.edns, answers, transport, true);
  return { action: 'reply', reply, rcode: RCODE.NOERROR, local: true, truncated, qtype: q.qtype };
}
