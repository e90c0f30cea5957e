// resolveIpamConfig: subnet choice, gateways, ip-range, IPv6 and the ULA /64, and their errors.
import { describe, expect, it } from 'vitest';
import { DnsnetError } from '../../src/errors.js';
import { DEFAULT_POOLS, resolveIpamConfig, ulaSubnet, type IpamSpec } from '../../src/ipam/index.js';
import { contains } from '../../src/ip/index.js';

const spec = (over: Partial<IpamSpec>): IpamSpec => ({ subnets: [], gateways: [], ipv6: false, ...over });
const SEED = 'machine-id-1234';

function errorOf(fn: () => unknown): DnsnetError {
  try {
    fn();
  } catch (error) {
    if (error instanceof DnsnetError) return error;
    throw error;
  }
  throw new Error('expected a DnsnetError');
}

describe('resolveIpamConfig', () => {
  it.each<[string, IpamSpec, string[], object[]]>([
    ['default pool, first usable gateway', spec({}), [], [{ subnet: '172.17.0.0/16', gateway: '172.17.0.1' }]],
    ['skips what is taken', spec({}), ['172.17.0.0/16', '172.18.0.1/32'], [{ subnet: '172.19.0.0/16', gateway: '172.19.0.1' }]],
    ['given subnet', spec({ subnets: ['10.213.0.0/24'] }), [], [{ subnet: '10.213.0.0/24', gateway: '10.213.0.1' }]],
    ['given gateway', spec({ subnets: ['10.213.0.0/24'], gateways: ['10.213.0.254'] }), [], [{ subnet: '10.213.0.0/24', gateway: '10.213.0.254' }]],
    [
      'ip-range',
      spec({ subnets: ['10.213.0.0/16'], ipRange: '10.213.5.0/24' }),
      [],
      [{ subnet: '10.213.0.0/16', gateway: '10.213.0.1', ipRange: '10.213.5.0/24' }],
    ],
    [
      'given v4 and v6',
      spec({ subnets: ['fd00:dead:beef::/64', '10.213.0.0/24'], gateways: ['FD00:DEAD:BEEF::FE'], ipv6: true }),
      [],
      [
        { subnet: '10.213.0.0/24', gateway: '10.213.0.1' },
        { subnet: 'fd00:dead:beef::/64', gateway: 'fd00:dead:beef::fe' },
      ],
    ],
  ])('%s', (_case, s, taken, expected) => {
    expect(resolveIpamConfig(s, taken, SEED)).toEqual(expected);
  });

  it('--ipv6 without a v6 subnet takes a ULA /64 with ::1 as gateway', () => {
    const [v4, v6] = resolveIpamConfig(spec({ ipv6: true }), [], SEED);
    expect(v4?.subnet).toBe('172.17.0.0/16');
    expect(v6?.subnet).toBe(ulaSubnet(SEED));
    expect(v6?.subnet).toMatch(/^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/64$/);
    expect(v6?.gateway).toBe(v6?.subnet.replace('/64', '1'));
  });

  it.each<[string, IpamSpec, string[], DnsnetError['code'], string]>([
    ['gateway outside the subnet', spec({ subnets: ['10.213.0.0/24'], gateways: ['10.213.1.1'] }), [], 'invalid', 'gateway 10.213.1.1 is not in subnet 10.213.0.0/24'],
    ['gateway = network address', spec({ subnets: ['10.213.0.0/24'], gateways: ['10.213.0.0'] }), [], 'invalid', 'gateway 10.213.0.0 is the network address of 10.213.0.0/24'],
    ['gateway = broadcast', spec({ subnets: ['10.213.0.0/24'], gateways: ['10.213.0.255'] }), [], 'invalid', 'gateway 10.213.0.255 is the broadcast address of 10.213.0.0/24'],
    ['gateway without subnet', spec({ gateways: ['10.213.0.1'] }), [], 'invalid', 'gateway 10.213.0.1 needs an IPv4 --subnet to go with it'],
    ['malformed gateway', spec({ subnets: ['10.213.0.0/24'], gateways: ['10.213.0'] }), [], 'invalid', 'invalid gateway "10.213.0": "10.213.0" is not an IPv4 or IPv6 address'],
    ['two gateways', spec({ subnets: ['10.213.0.0/24'], gateways: ['10.213.0.1', '10.213.0.2'] }), [], 'invalid', 'at most one IPv4 gateway is supported, got 10.213.0.1, 10.213.0.2'],
    ['two v4 subnets', spec({ subnets: ['10.213.0.0/24', '10.213.1.0/24'] }), [], 'invalid', 'at most one IPv4 subnet is supported, got 10.213.0.0/24, 10.213.1.0/24'],
    ['v6 subnet without --ipv6', spec({ subnets: ['fd00::/64'] }), [], 'invalid', 'subnet fd00::/64 is IPv6 but IPv6 is not enabled: add --ipv6'],
    ['ip-range outside the subnet', spec({ subnets: ['10.213.0.0/24'], ipRange: '10.213.0.0/23' }), [], 'invalid', 'ip-range 10.213.0.0/23 is not inside subnet 10.213.0.0/24'],
    ['ip-range with host bits', spec({ subnets: ['10.213.0.0/16'], ipRange: '10.213.5.1/24' }), [], 'invalid', 'invalid ip-range "10.213.5.1/24": it should be 10.213.5.0/24'],
    ['ip-range without subnet', spec({ ipRange: '10.213.5.0/24' }), [], 'invalid', 'ip-range 10.213.5.0/24 needs an IPv4 --subnet to go with it'],
    ['subnet too small', spec({ subnets: ['10.213.0.0/31'] }), [], 'invalid', 'subnet 10.213.0.0/31 is too small: the prefix length must be at most 30'],
    ['malformed subnet', spec({ subnets: ['10.1.2.3/16'] }), [], 'invalid', 'invalid subnet "10.1.2.3/16": it should be 10.1.0.0/16'],
    ['subnet overlaps', spec({ subnets: ['172.18.0.0/16'] }), ['172.16.0.0/12'], 'conflict', 'subnet 172.18.0.0/16 overlaps 172.16.0.0/12, which is in use'],
    ['v6 subnet overlaps', spec({ subnets: ['fd00::/64'], ipv6: true }), ['fd00::/48'], 'conflict', 'subnet fd00::/64 overlaps fd00::/48, which is in use'],
    ['pools exhausted', spec({}), [...DEFAULT_POOLS], 'exhausted', 'no free subnet in the default pools: all 31 overlap a network or a route of the host; use --subnet'],
  ])('%s', (_case, s, taken, code, message) => {
    const error = errorOf(() => resolveIpamConfig(s, taken, SEED));
    expect(error.code).toBe(code);
    expect(error.message).toBe(message);
  });
});

describe('ulaSubnet', () => {
  it('is stable for a seed, different for another seed, and inside fd00::/8', () => {
    const a = ulaSubnet(SEED);
    expect(ulaSubnet(SEED)).toBe(a);
    expect(ulaSubnet('another-host')).not.toBe(a);
    expect(contains('fd00::/8', a.split('/')[0]!)).toBe(true);
    expect(a.endsWith('/64')).toBe(true);
  });

  it('takes the next /64 of the same /48 when the first is taken', () => {
    const first = ulaSubnet(SEED);
    const second = ulaSubnet(SEED, [first, '10.0.0.0/8']);
    expect(second).not.toBe(first);
    const prefix48 = (s: string) => s.split(':').slice(0, 3).join(':');
    expect(prefix48(second)).toBe(prefix48(first));
    expect(ulaSubnet(SEED, [first, second])).not.toBe(second);
  });

  it('a taken /48 exhausts it', () => {
    const first = ulaSubnet(SEED);
    const p48 = `${first.split('::')[0]}::/48`;
    const error = errorOf(() => ulaSubnet(SEED, [p48]));
    expect(error.code).toBe('exhausted');
  });
});
