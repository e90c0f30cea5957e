// The default pools (Docker's 31, in order) and the choice of the first free subnet.
import { describe, expect, it } from 'vitest';
import { DEFAULT_POOLS, chooseSubnet } from '../../src/ipam/index.js';

describe('DEFAULT_POOLS', () => {
  it('are Docker\'s 31 subnets in order', () => {
    const expected = [
      '172.17.0.0/16',
      '172.18.0.0/16',
      '172.19.0.0/16',
      ...Array.from({ length: 12 }, (_, i) => `172.${20 + i}.0.0/16`),
      ...Array.from({ length: 16 }, (_, i) => `192.168.${i * 16}.0/20`),
    ];
    expect(DEFAULT_POOLS).toEqual(expected);
    expect(DEFAULT_POOLS).toHaveLength(31);
  });
});

describe('chooseSubnet', () => {
  it.each<[string, string[], string | undefined]>([
    ['nothing taken', [], '172.17.0.0/16'],
    ['the first taken by another network', ['172.17.0.0/16'], '172.18.0.0/16'],
    ['a host address with host bits', ['172.17.0.1/16', '172.18.5.9/24'], '172.19.0.0/16'],
    ['a nameserver /32 inside a pool', ['172.17.0.0/16', '172.18.200.53/32'], '172.19.0.0/16'],
    ['a bare nameserver address', ['172.17.0.53'], '172.18.0.0/16'],
    ['a /12 route covering all the 172 pools', ['172.16.0.0/12'], '192.168.0.0/20'],
    ['a /8 route plus some of 192.168', ['172.0.0.0/8', '192.168.0.0/19'], '192.168.32.0/20'],
    ['a small route inside a /20', ['172.16.0.0/12', '192.168.1.0/24'], '192.168.16.0/20'],
    ['a supernet of everything', ['128.0.0.0/1'], undefined],
    ['every pool taken', [...DEFAULT_POOLS], undefined],
    ['IPv6 entries are ignored', ['fd00::/8', '::/0', 'fe80::1%eth0'], '172.17.0.0/16'],
    ['unrelated routes', ['10.0.0.0/8', '192.0.2.0/24', '127.0.0.0/8'], '172.17.0.0/16'],
  ])('%s', (_case, taken, expected) => {
    expect(chooseSubnet(taken)).toBe(expected);
  });
});
