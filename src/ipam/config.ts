// From `network create` flags and what is taken, the IPAM configuration of a new network (pure).
import { createHash } from 'node:crypto';
import { DnsnetError } from '../errors.js';
import type { IpamConfig } from '../state/types.js';
import {
  bitsOf,
  containsCidr,
  contains,
  familyOf,
  formatAddress,
  formatCidr,
  lastValue,
  overlaps,
  parseAddress,
  parseCidr,
  parseCidrLoose,
  type Cidr,
  type Family,
} from '../ip/index.js';
import { chooseSubnet, DEFAULT_POOLS } from './pools.js';

export interface IpamSpec {
  subnets: string[]; // --subnet, repeatable: at most one IPv4 and one IPv6
  gateways: string[]; // --gateway: each must fall in the subnet of its family
  ipRange?: string; // --ip-range: inside the subnet of its family
  ipv6: boolean; // --ipv6
}

/**
 * Resolve the IPAM configs of a new network: IPv4 first, then IPv6 when enabled.
 * `taken` lists CIDRs (or bare addresses) that a subnet must not overlap; `ulaSeed` makes the
 * automatic IPv6 /64 stable per host. Throws 'invalid', 'conflict' or 'exhausted'.
 */
export function resolveIpamConfig(spec: IpamSpec, taken: string[], ulaSeed: string): IpamConfig[] {
  const claimed = taken.map((t) => parseCidrLoose(t, 'taken subnet'));
  const subnets = spec.subnets.map((s) => parseCidr(s, 'subnet'));
  const byFamily = (f: Family) => subnets.filter((s) => s.family === f);
  if (byFamily(4).length > 1) throw new DnsnetError('invalid', `at most one IPv4 subnet is supported, got ${byFamily(4).map(formatCidr).join(', ')}`);
  if (byFamily(6).length > 1) throw new DnsnetError('invalid', `at most one IPv6 subnet is supported, got ${byFamily(6).map(formatCidr).join(', ')}`);
  const v6Given = byFamily(6)[0];
  if (v6Given && !spec.ipv6) throw new DnsnetError('invalid', `subnet ${formatCidr(v6Given)} is IPv6 but IPv6 is not enabled: add --ipv6`);

  const gateways = spec.gateways.map((g) => parseAddress(g, 'gateway'));
  for (const f of [4, 6] as const) {
    const gws = gateways.filter((g) => g.family === f);
    if (gws.length > 1) throw new DnsnetError('invalid', `at most one IPv${f} gateway is supported, got ${gws.map(formatAddress).join(', ')}`);
    // As Docker: a gateway or range needs a subnet given with it, else it could not be checked.
    if (gws.length === 1 && byFamily(f).length === 0) {
      throw new DnsnetError('invalid', `gateway ${formatAddress(gws[0]!)} needs an IPv${f} --subnet to go with it`);
    }
  }
  const range = spec.ipRange === undefined ? undefined : parseCidr(spec.ipRange, 'ip-range');
  if (range && byFamily(range.family).length === 0) {
    throw new DnsnetError('invalid', `ip-range ${formatCidr(range)} needs an IPv${range.family} --subnet to go with it`);
  }

  const configs: IpamConfig[] = [];
  const v4Given = byFamily(4)[0];
  let v4: Cidr;
  if (v4Given) {
    checkFree(v4Given, claimed);
    v4 = v4Given;
  } else {
    const chosen = chooseSubnet(taken);
    if (chosen === undefined) {
      throw new DnsnetError('exhausted', `no free subnet in the default pools: all ${DEFAULT_POOLS.length} overlap a network or a route of the host; use --subnet`);
    }
    v4 = parseCidr(chosen);
  }
  configs.push(buildConfig(v4, gateways.find((g) => g.family === 4), range?.family === 4 ? range : undefined));

  if (spec.ipv6) {
    let v6: Cidr;
    if (v6Given) {
      checkFree(v6Given, claimed);
      v6 = v6Given;
    } else {
      v6 = parseCidr(ulaSubnet(ulaSeed, taken));
    }
    configs.push(buildConfig(v6, gateways.find((g) => g.family === 6), range?.family === 6 ? range : undefined));
  }
  return configs;
}

function checkFree(subnet: Cidr, claimed: Cidr[]): void {
  const clash = claimed.find((c) => overlaps(subnet, c));
  if (clash) throw new DnsnetError('conflict', `subnet ${formatCidr(subnet)} overlaps ${formatCidr(clash)}, which is in use`);
}

function buildConfig(subnet: Cidr, gateway: { family: Family; value: bigint } | undefined, range: Cidr | undefined): IpamConfig {
  const text = formatCidr(subnet);
  // Room for the network address, a gateway and one container (and, in IPv4, the broadcast).
  const maxPrefix = bitsOf(subnet.family) - 2;
  if (subnet.prefix > maxPrefix) throw new DnsnetError('invalid', `subnet ${text} is too small: the prefix length must be at most ${maxPrefix}`);
  let gw: bigint;
  if (gateway) {
    const gwText = formatAddress(gateway);
    if (!contains(subnet, gateway)) throw new DnsnetError('invalid', `gateway ${gwText} is not in subnet ${text}`);
    if (gateway.value === subnet.network) throw new DnsnetError('invalid', `gateway ${gwText} is the network address of ${text}`);
    if (subnet.family === 4 && gateway.value === lastValue(subnet)) throw new DnsnetError('invalid', `gateway ${gwText} is the broadcast address of ${text}`);
    gw = gateway.value;
  } else {
    gw = subnet.network + 1n; // the first usable address, as Docker
  }
  const config: IpamConfig = { subnet: text, gateway: formatAddress({ family: subnet.family, value: gw }) };
  if (range) {
    if (!containsCidr(subnet, range)) throw new DnsnetError('invalid', `ip-range ${formatCidr(range)} is not inside subnet ${text}`);
    config.ipRange = formatCidr(range);
  }
  return config;
}

/**
 * A /64 from this host's ULA /48 (RFC 4193: fd + 40-bit global ID, here the first 40 bits of
 * sha256(seed), so the same seed always gives the same /48), the first one not in `taken`.
 */
export function ulaSubnet(seed: string, taken: Iterable<string> = []): string {
  const digest = createHash('sha256').update(seed).digest();
  const globalId = BigInt(`0x${digest.subarray(0, 5).toString('hex')}`);
  const base = ((0xfdn << 40n) | globalId) << 80n; // fdXX:XXXX:XXXX::/48
  const claimed = [...taken].filter((t) => familyOf(t) === 6).map((t) => parseCidrLoose(t, 'taken subnet'));
  for (let i = 0n; i < 1n << 16n; i++) {
    const candidate: Cidr = { family: 6, network: base | (i << 64n), prefix: 64 };
    if (!claimed.some((c) => overlaps(candidate, c))) return formatCidr(candidate);
  }
  const prefix = formatCidr({ family: 6, network: base, prefix: 48 });
  throw new DnsnetError('exhausted', `no free /64 in this host's ULA prefix ${prefix}: give an IPv6 --subnet`);
}
