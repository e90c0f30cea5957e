// Docker's default IPv4 address pools and the choice of the first free subnet in them (pure).
import { formatCidr, overlaps, parseCidr, parseCidrLoose, type Cidr } from '../ip/index.js';

function split(base: string, prefix: number): string[] {
  const parent = parseCidr(base, 'pool');
  const count = 1 << (prefix - parent.prefix);
  const step = 1n << BigInt(32 - prefix);
  return Array.from({ length: count }, (_, i) => formatCidr({ family: 4, network: parent.network + BigInt(i) * step, prefix }));
}

/**
 * Docker's defaults (libnetwork ipamutils): 172.17-19.0.0/16, then 172.20.0.0/14 .. 172.28.0.0/14
 * split into /16s (172.20-31), then 192.168.0.0/16 split into /20s. 31 subnets, in this order.
 */
export const DEFAULT_POOLS: readonly string[] = Object.freeze([
  '172.17.0.0/16',
  '172.18.0.0/16',
  '172.19.0.0/16',
  ...split('172.20.0.0/14', 16),
  ...split('172.24.0.0/14', 16),
  ...split('172.28.0.0/14', 16),
  ...split('192.168.0.0/16', 20),
]);

/**
 * The first default pool subnet that overlaps none of `taken`: other dnsnet networks' subnets,
 * the host's routes and addresses, its nameservers as /32. Entries may be bare addresses or carry
 * host bits (they come from the host); entries of the other family are ignored. undefined = exhausted.
 */
export function chooseSubnet(taken: Iterable<string>, pools: readonly string[] = DEFAULT_POOLS): string | undefined {
  const claimed: Cidr[] = [...taken].map((t) => parseCidrLoose(t, 'taken subnet')).filter((c) => c.family === 4);
  return pools.find((pool) => !claimed.some((c) => overlaps(pool, c)));
}
