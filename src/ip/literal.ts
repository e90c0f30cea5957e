// Checks on address text, over the one parser (cidr.ts): which family, loopback, link-local, the bytes.
import { parseAddress, type Address } from './cidr.js';

/** The address without an IPv6 `%zone` (a zone does not change which range an address is in). */
function withoutZone(text: string): string {
  const i = text.indexOf('%');
  return i === -1 ? text : text.slice(0, i);
}

/** The parsed address, or undefined; an IPv6 literal may carry a `%zone`. */
function tryParse(text: string): Address | undefined {
  const bare = withoutZone(text);
  if (bare !== text && !bare.includes(':')) return undefined; // a zone only on IPv6
  if (bare.trim() !== bare || bare === '') return undefined;
  try {
    return parseAddress(bare);
  } catch {
    return undefined;
  }
}

/** 4 or 6 for an IPv4 / IPv6 literal (IPv6 may carry a `%zone`), else 0. */
export function ipVersion(text: string): 0 | 4 | 6 {
  return tryParse(text)?.family ?? 0;
}

export function isIpLiteral(text: string): boolean {
  return ipVersion(text) !== 0;
}

const V4_LOOPBACK = 0x7fn; // 127.0.0.0/8: the first octet
const V6_MAPPED = 0xffffn << 32n; // ::ffff:0:0/96

/** 127.0.0.0/8 or ::1, in any spelling (an IPv4-mapped 127.x counts too). */
export function isLoopback(text: string): boolean {
  const a = tryParse(text);
  if (!a) return false;
  if (a.family === 4) return a.value >> 24n === V4_LOOPBACK;
  if (a.value === 1n) return true;
  return a.value >> 32n === V6_MAPPED >> 32n && (a.value & 0xffffffffn) >> 24n === V4_LOOPBACK;
}

/** fe80::/10. */
export function isLinkLocal6(text: string): boolean {
  const a = tryParse(text);
  return a?.family === 6 && a.value >> 118n === 0x3fan;
}

/** The address in network order: 4 bytes (IPv4) or 16 (IPv6, a zone ignored); undefined when not an address. */
export function addressBytes(text: string): number[] | undefined {
  const a = tryParse(text);
  if (!a) return undefined;
  const n = a.family === 4 ? 4 : 16;
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = Number((a.value >> BigInt(8 * (n - 1 - i))) & 0xffn);
  return out;
}
