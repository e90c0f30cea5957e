// IP literal checks shared by the parser, the flag validators and the nameserver filter.
import { BlockList, isIP } from 'node:net';

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

const linkLocal6 = new BlockList();
linkLocal6.addSubnet('fe80::', 10, 'ipv6');

/** 4 or 6 for an IPv4 / IPv6 literal (IPv6 may carry a `%zone`), else 0. */
export function ipVersion(s: string): 0 | 4 | 6 {
  const v = isIP(s);
  return v === 4 || v === 6 ? v : 0;
}

export function isIpLiteral(s: string): boolean {
  return ipVersion(s) !== 0;
}

// BlockList does not take a zone; the zone does not change which range an address is in.
function withoutZone(ip: string): string {
  const i = ip.indexOf('%');
  return i === -1 ? ip : ip.slice(0, i);
}

/** 127.0.0.0/8 or ::1, in any spelling (an IPv4-mapped 127.x counts too). */
export function isLoopback(ip: string): boolean {
  const v = ipVersion(ip);
  if (v === 0) return false;
  return loopback.check(withoutZone(ip), v === 4 ? 'ipv4' : 'ipv6');
}

/** fe80::/10. */
export function isLinkLocal6(ip: string): boolean {
  return ipVersion(ip) === 6 && linkLocal6.check(withoutZone(ip), 'ipv6');
}
