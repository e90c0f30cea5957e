// Parse, normalise and compare IPv4 and IPv6 addresses and CIDRs; every value is a bigint (pure).
import { DnsnetError } from '../errors.js';

export type Family = 4 | 6;

export interface Address {
  family: Family;
  value: bigint;
}

export interface Cidr {
  family: Family;
  network: bigint; // host bits are always zero
  prefix: number;
}

/** Anything that names a CIDR: its text or an already parsed value. */
export type CidrLike = string | Cidr;

export function bitsOf(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** A reason why text is not an address; thrown internally and turned into a DnsnetError by callers. */
class Malformed extends Error {}

function parseV4(text: string): bigint {
  const parts = text.split('.');
  if (parts.length !== 4) throw new Malformed(`"${text}" is not an IPv4 or IPv6 address`);
  let value = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) throw new Malformed(`"${text}" is not an IPv4 or IPv6 address`);
    // Go's netip (what Docker uses) rejects leading zeros: inet_aton would read them as octal.
    if (part.length > 1 && part.startsWith('0')) throw new Malformed(`octet "${part}" of ${text} has a leading zero`);
    const octet = Number(part);
    if (octet > 255) throw new Malformed(`octet ${octet} of ${text} is out of range 0-255`);
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseV6(text: string): bigint {
  const bad = () => new Malformed(`"${text}" is not an IPv4 or IPv6 address`);
  if (text.includes('%')) throw new Malformed(`"${text}" has a zone (%...), which has no place here`);
  let body = text;
  let tail: bigint[] = [];
  // An embedded IPv4 address (::ffff:1.2.3.4) fills the last two groups.
  const lastColon = body.lastIndexOf(':');
  if (body.slice(lastColon + 1).includes('.')) {
    const v4 = parseV4(body.slice(lastColon + 1));
    tail = [v4 >> 16n, v4 & 0xffffn];
    body = body.slice(0, lastColon + 1);
    if (body.endsWith(':') && !body.endsWith('::')) body = body.slice(0, -1);
  }
  const halves = body.split('::');
  if (halves.length > 2) throw bad();
  const groups = (s: string): bigint[] => {
    if (s === '') return [];
    return s.split(':').map((g) => {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw bad();
      return BigInt(`0x${g}`);
    });
  };
  const head = groups(halves[0] ?? '');
  const rest = halves.length === 2 ? groups(halves[1] ?? '') : [];
  const given = head.length + rest.length + tail.length;
  let all: bigint[];
  if (halves.length === 2) {
    if (given > 7) throw bad();
    all = [...head, ...Array<bigint>(8 - given).fill(0n), ...rest, ...tail];
  } else {
    if (given !== 8) throw bad();
    all = [...head, ...tail];
  }
  return all.reduce((acc, g) => (acc << 16n) | g, 0n);
}

function parseRaw(text: string): Address {
  if (text.includes(':')) return { family: 6, value: parseV6(text) };
  return { family: 4, value: parseV4(text) };
}

/** Parse one address; `what` names it in the error (`invalid gateway "x": ...`). */
export function parseAddress(text: string, what = 'address'): Address {
  try {
    return parseRaw(text.trim());
  } catch (error) {
    if (error instanceof Malformed) throw new DnsnetError('invalid', `invalid ${what} "${text}": ${error.message}`);
    throw error;
  }
}

export function formatAddress(address: Address): string {
  const { family, value } = address;
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: the longest run of two or more zero groups (the first one on a tie) becomes "::".
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** The canonical text of an address (lowercase, compressed IPv6). */
export function normaliseAddress(text: string, what = 'address'): string {
  return formatAddress(parseAddress(text, what));
}

function hostMask(family: Family, prefix: number): bigint {
  return (1n << BigInt(bitsOf(family) - prefix)) - 1n;
}

function splitCidr(text: string, what: string): { addr: Address; prefix: number } {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  if (slash < 0) throw new DnsnetError('invalid', `invalid ${what} "${text}": expected ADDRESS/PREFIX, e.g. 172.18.0.0/16`);
  const addrText = trimmed.slice(0, slash);
  const prefixText = trimmed.slice(slash + 1);
  let addr: Address;
  try {
    addr = parseRaw(addrText);
  } catch (error) {
    if (error instanceof Malformed) throw new DnsnetError('invalid', `invalid ${what} "${text}": ${error.message}`);
    throw error;
  }
  const max = bitsOf(addr.family);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    throw new DnsnetError('invalid', `invalid ${what} "${text}": prefix length must be 0-${max}`);
  }
  return { addr, prefix: Number(prefixText) };
}

/**
 * Parse a CIDR strictly, as Docker does for --subnet and --ip-range: host bits set is an error
 * that names the network meant (`invalid subnet "10.1.2.3/16": it should be 10.1.0.0/16`).
 */
export function parseCidr(text: string, what = 'subnet'): Cidr {
  const { addr, prefix } = splitCidr(text, what);
  const network = addr.value & ~hostMask(addr.family, prefix);
  if (network !== addr.value) {
    const meant = formatCidr({ family: addr.family, network, prefix });
    throw new DnsnetError('invalid', `invalid ${what} "${text}": it should be ${meant}`);
  }
  return { family: addr.family, network, prefix };
}

/**
 * Parse a CIDR leniently, for what the host reports: host bits are masked off (192.0.2.2/24 is
 * 192.0.2.0/24), a bare address is a /32 or /128, and an IPv6 zone (fe80::1%eth0) is dropped.
 */
export function parseCidrLoose(text: string, what = 'subnet'): Cidr {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  const addrPart = (slash < 0 ? trimmed : trimmed.slice(0, slash)).replace(/%[^/]*$/, '');
  const withPrefix = slash < 0 ? `${addrPart}/${addrPart.includes(':') ? 128 : 32}` : `${addrPart}${trimmed.slice(slash)}`;
  const { addr, prefix } = splitCidr(withPrefix, what);
  return { family: addr.family, network: addr.value & ~hostMask(addr.family, prefix), prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatAddress({ family: cidr.family, value: cidr.network })}/${cidr.prefix}`;
}

/** The canonical text of a strictly parsed CIDR (IPv6 lowercased and compressed). */
export function normaliseCidr(text: string, what = 'subnet'): string {
  return formatCidr(parseCidr(text, what));
}

function asCidr(c: CidrLike): Cidr {
  return typeof c === 'string' ? parseCidrLoose(c) : c;
}

function asAddress(a: string | Address): Address {
  return typeof a === 'string' ? parseAddress(a) : a;
}

/** The last address of the CIDR as a number: the broadcast address for IPv4. */
export function lastValue(c: CidrLike): bigint {
  const cidr = asCidr(c);
  return cidr.network | hostMask(cidr.family, cidr.prefix);
}

/** How many addresses the CIDR spans. */
export function cidrSize(c: CidrLike): bigint {
  const cidr = asCidr(c);
  return 1n << BigInt(bitsOf(cidr.family) - cidr.prefix);
}

export function networkAddress(c: CidrLike): string {
  const cidr = asCidr(c);
  return formatAddress({ family: cidr.family, value: cidr.network });
}

/** IPv4: the broadcast address. IPv6 has no broadcast: the last address of the prefix. */
export function broadcastAddress(c: CidrLike): string {
  const cidr = asCidr(c);
  return formatAddress({ family: cidr.family, value: lastValue(cidr) });
}

/** The n-th address of the CIDR (0 = the network address); out of range is an 'invalid' error. */
export function nthAddress(c: CidrLike, n: number | bigint): string {
  const cidr = asCidr(c);
  const offset = BigInt(n);
  if (offset < 0n || offset >= cidrSize(cidr)) {
    throw new DnsnetError('invalid', `address number ${offset} is outside ${formatCidr(cidr)}`);
  }
  return formatAddress({ family: cidr.family, value: cidr.network + offset });
}

/** Do two CIDRs share any address? Different families never overlap. */
export function overlaps(a: CidrLike, b: CidrLike): boolean {
  const x = asCidr(a);
  const y = asCidr(b);
  if (x.family !== y.family) return false;
  return x.network <= lastValue(y) && y.network <= lastValue(x);
}

/** Is the address inside the CIDR? An address of the other family never is. */
export function contains(c: CidrLike, ip: string | Address): boolean {
  const cidr = asCidr(c);
  const addr = asAddress(ip);
  return addr.family === cidr.family && addr.value >= cidr.network && addr.value <= lastValue(cidr);
}

/** Is `inner` wholly inside `outer`? */
export function containsCidr(outer: CidrLike, inner: CidrLike): boolean {
  const o = asCidr(outer);
  const i = asCidr(inner);
  return o.family === i.family && i.prefix >= o.prefix && i.network >= o.network && lastValue(i) <= lastValue(o);
}

/** 4 or 6, judged by the text alone (a colon means IPv6). */
export function familyOf(text: string): Family {
  return text.includes(':') ? 6 : 4;
}
