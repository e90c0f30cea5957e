// Hand out container addresses from a network's IPAM config, and their Docker-style MACs (pure).
import { DnsnetError } from '../errors.js';
import type { IpamConfig } from '../state/types.js';
import { contains, formatAddress, formatCidr, lastValue, parseAddress, parseCidr, type Cidr } from '../ip/index.js';

/**
 * The address for a new endpoint: `requested` (--ip) if given, else the lowest free one (inside
 * ipRange when set). The subnet's network address, its broadcast (IPv4) and the gateway are never
 * handed out. `used` may hold addresses of either family (others are ignored). A released address
 * is simply one no longer in `used`, so it is reused. The scan is bounded by |used| + 3 steps,
 * so an IPv6 /64 is no slower than a /24.
 */
export function allocateAddress(config: IpamConfig, used: Iterable<string>, requested?: string): string {
  const subnet = parseCidr(config.subnet);
  const range: Cidr = config.ipRange ? parseCidr(config.ipRange, 'ip-range') : subnet;
  const gateway = parseAddress(config.gateway, 'gateway').value;
  const broadcast = subnet.family === 4 ? lastValue(subnet) : undefined;
  const taken = new Set<bigint>();
  for (const u of used) {
    let addr;
    try {
      addr = parseAddress(u);
    } catch {
      continue; // not an address of ours: ignore rather than fail an unrelated allocation
    }
    if (addr.family === subnet.family) taken.add(addr.value);
  }
  const reserved = (v: bigint): string | undefined => {
    if (v === subnet.network) return `the network address of ${config.subnet}`;
    if (v === broadcast) return `the broadcast address of ${config.subnet}`;
    if (v === gateway) return `the gateway of ${config.subnet}`;
    return undefined;
  };

  if (requested !== undefined) {
    const want = parseAddress(requested, 'address');
    const text = formatAddress(want);
    if (!contains(subnet, want)) throw new DnsnetError('invalid', `address ${text} is not in subnet ${config.subnet}`);
    if (config.ipRange && !contains(range, want)) throw new DnsnetError('invalid', `address ${text} is not in ip-range ${config.ipRange}`);
    const why = reserved(want.value);
    if (why && want.value === gateway) throw new DnsnetError('conflict', `address ${text} is already in use: it is ${why}`);
    if (why) throw new DnsnetError('invalid', `address ${text} cannot be used: it is ${why}`);
    if (taken.has(want.value)) throw new DnsnetError('conflict', `address ${text} is already in use`);
    return text;
  }

  const end = lastValue(range);
  for (let v = range.network; v <= end; v++) {
    if (reserved(v) === undefined && !taken.has(v)) return formatAddress({ family: subnet.family, value: v });
  }
  const where = config.ipRange ? `ip-range ${formatCidr(range)}` : `subnet ${config.subnet}`;
  throw new DnsnetError('exhausted', `no free address left in ${where}`);
}

/** Docker's MAC for an IPv4 endpoint: 02:42 (locally administered) followed by the 4 octets. */
export function macFor(ip: string): string {
  const addr = parseAddress(ip, 'address');
  if (addr.family !== 4) throw new DnsnetError('invalid', `a MAC is derived from an IPv4 address, got ${ip}`);
  const octets = [24n, 16n, 8n, 0n].map((s) => Number((addr.value >> s) & 0xffn));
  return ['02', '42', ...octets.map((o) => o.toString(16).padStart(2, '0'))].join(':');
}
