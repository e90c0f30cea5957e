// Tables for CIDR and address parsing, formatting, overlap and containment, IPv4 and IPv6.
import { describe, expect, it } from 'vitest';
import { DnsnetError } from '../../src/errors.js';
import {
  broadcastAddress,
  contains,
  containsCidr,
  networkAddress,
  normaliseAddress,
  normaliseCidr,
  nthAddress,
  overlaps,
  parseCidr,
  parseCidrLoose,
} from '../../src/ip/index.js';

describe('normaliseCidr', () => {
  it.each([
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['172.18.0.0/16', '172.18.0.0/16'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['10.1.2.3/32', '10.1.2.3/32'],
    [' 192.168.16.0/20 ', '192.168.16.0/20'],
    ['FD00:0:0:0::/64', 'fd00::/64'],
    ['2001:db8:0:0:1:0:0:0/112', '2001:db8:0:0:1::/112'], // the longer zero run wins,
    ['2001:0db8:0000:0000:0000:0000:0000:0000/32', '2001:db8::/32'],
    ['::/0', '::/0'],
    ['::ffff:10.0.0.0/104', '::ffff:a00:0/104'],
  ])('%s -> %s', (input, expected) => {
    expect(normaliseCidr(input)).toBe(expected);
  });

  it.each([
    ['10.0.0.0/33', 'invalid subnet "10.0.0.0/33": prefix length must be 0-32'],
    ['300.1.1.1/8', 'invalid subnet "300.1.1.1/8": octet 300 of 300.1.1.1 is out of range 0-255'],
    ['abc', 'invalid subnet "abc": expected ADDRESS/PREFIX, e.g. 172.18.0.0/16'],
    ['10.1.2.3/16', 'invalid subnet "10.1.2.3/16": it should be 10.1.0.0/16'],
    ['fd00::1/64', 'invalid subnet "fd00::1/64": it should be fd00::/64'],
    ['fd00::/129', 'invalid subnet "fd00::/129": prefix length must be 0-128'],
    ['10.0.0/8', 'invalid subnet "10.0.0/8": "10.0.0" is not an IPv4 or IPv6 address'],
    ['010.0.0.0/8', 'invalid subnet "010.0.0.0/8": octet "010" of 010.0.0.0 has a leading zero'],
    ['10.0.0.0/', 'invalid subnet "10.0.0.0/": prefix length must be 0-32'],
    ['10.0.0.0/-1', 'invalid subnet "10.0.0.0/-1": prefix length must be 0-32'],
    ['1::2::3/64', 'invalid subnet "1::2::3/64": "1::2::3" is not an IPv4 or IPv6 address'],
    ['fd00:::/64', 'invalid subnet "fd00:::/64": "fd00:::" is not an IPv4 or IPv6 address'],
    ['1:2:3:4:5:6:7:8:9/64', 'invalid subnet "1:2:3:4:5:6:7:8:9/64": "1:2:3:4:5:6:7:8:9" is not an IPv4 or IPv6 address'],
    ['', 'invalid subnet "": expected ADDRESS/PREFIX, e.g. 172.18.0.0/16'],
  ])('rejects %j', (input, message) => {
    let caught: unknown;
    try {
      parseCidr(input);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DnsnetError);
    expect((caught as DnsnetError).code).toBe('invalid');
    expect((caught as DnsnetError).message).toBe(message);
  });
});

describe('normaliseAddress', () => {
  it.each([
    ['10.0.0.1', '10.0.0.1'],
    ['255.255.255.255', '255.255.255.255'],
    ['::', '::'],
    ['::1', '::1'],
    ['FE80::0001', 'fe80::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal zero runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'], // the longest run wins
    ['::ffff:1.2.3.4', '::ffff:102:304'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
  ])('%s -> %s', (input, expected) => {
    expect(normaliseAddress(input)).toBe(expected);
  });

  it.each(['1.2.3', '1.2.3.4.5', '256.0.0.1', 'fe80::1%eth0', 'g::1', '12345::', '', 'localhost'])('rejects %j', (input) => {
    expect(() => normaliseAddress(input)).toThrow(DnsnetError);
  });
});

describe('parseCidrLoose (what the host reports)', () => {
  it.each([
    ['192.0.2.2/24', '192.0.2.0/24'],
    ['10.255.255.53', '10.255.255.53/32'],
    ['fe80::1%eth0', 'fe80::1/128'],
    ['fe80::a:b:c:d/64', 'fe80::/64'],
  ])('%s -> %s', (input, expected) => {
    const c = parseCidrLoose(input);
    expect(`${networkAddress(c)}/${c.prefix}`).toBe(expected);
  });
});

describe('overlaps', () => {
  it.each([
    ['10.0.0.0/8', '10.1.0.0/16', true],
    ['10.1.0.0/16', '10.0.0.0/8', true],
    ['10.0.0.0/16', '10.1.0.0/16', false],
    ['172.18.0.0/16', '172.18.255.255/32', true],
    ['172.18.0.0/16', '172.19.0.0/32', false],
    ['172.16.0.0/12', '172.31.0.0/16', true],
    ['192.168.0.0/20', '192.168.16.0/20', false],
    ['0.0.0.0/0', '1.2.3.4/32', true],
    ['fd00::/64', 'fd00::1/128', true],
    ['fd00::/64', 'fd00:0:0:1::/64', false],
    ['fd00::/8', 'fd12:3456::/48', true],
    ['::/0', '10.0.0.0/8', false], // families never overlap
    ['10.0.0.0/8', '10.0.0.1', true], // a bare address counts as /32
  ])('%s and %s: %s', (a, b, expected) => {
    expect(overlaps(a, b)).toBe(expected);
    expect(overlaps(b, a)).toBe(expected);
  });
});

describe('contains', () => {
  it.each([
    ['10.0.0.0/24', '10.0.0.0', true],
    ['10.0.0.0/24', '10.0.0.255', true],
    ['10.0.0.0/24', '10.0.1.0', false],
    ['10.0.0.0/24', '9.255.255.255', false],
    ['fd00::/64', 'fd00::ffff:ffff:ffff:ffff', true],
    ['fd00::/64', 'fd00:0:0:1::', false],
    ['fd00::/64', '10.0.0.1', false],
    ['0.0.0.0/0', '255.255.255.255', true],
  ])('%s contains %s: %s', (cidr, ip, expected) => {
    expect(contains(cidr, ip)).toBe(expected);
  });

  it('containsCidr', () => {
    expect(containsCidr('10.0.0.0/16', '10.0.4.0/24')).toBe(true);
    expect(containsCidr('10.0.0.0/16', '10.0.0.0/16')).toBe(true);
    expect(containsCidr('10.0.0.0/16', '10.0.0.0/8')).toBe(false);
    expect(containsCidr('10.0.0.0/16', '10.1.0.0/24')).toBe(false);
  });
});

describe('network, broadcast, nth address', () => {
  it.each([
    ['172.18.0.0/16', '172.18.0.0', '172.18.255.255', 1, '172.18.0.1'],
    ['10.213.0.0/30', '10.213.0.0', '10.213.0.3', 3, '10.213.0.3'],
    ['192.168.16.0/20', '192.168.16.0', '192.168.31.255', 256, '192.168.17.0'],
    ['fd00:1::/64', 'fd00:1::', 'fd00:1::ffff:ffff:ffff:ffff', 1, 'fd00:1::1'],
  ])('%s', (cidr, network, broadcast, n, nth) => {
    expect(networkAddress(cidr)).toBe(network);
    expect(broadcastAddress(cidr)).toBe(broadcast);
    expect(nthAddress(cidr, n)).toBe(nth);
  });

  it('nth address outside the prefix is an error', () => {
    expect(() => nthAddress('10.0.0.0/30', 4)).toThrow(/outside 10.0.0.0\/30/);
    expect(() => nthAddress('10.0.0.0/30', -1)).toThrow(DnsnetError);
  });
});
