// Address checks over the one parser: family, loopback, link-local, bytes (pure).
import { describe, expect, it } from 'vitest';
import { addressBytes, ipVersion, isIpLiteral, isLinkLocal6, isLoopback } from '../../src/ip/index.js';

describe('ip literals', () => {
  it.each([
    ['1.2.3.4', 4],
    ['::1', 6],
    ['fe80::1%eth0', 6],
    ['::ffff:10.1.2.3', 6],
    ['FE80::1', 6],
    ['01.2.3.4', 0], // leading zero: octal to inet_aton, refused (as Go's netip and Node's isIP do)
    ['1.2.3', 0],
    ['1::2::3', 0],
    ['1.2.3.4%eth0', 0], // a zone only on IPv6
    [' 1.2.3.4', 0],
    ['', 0],
    ['dns.example', 0],
  ])('ipVersion(%j) = %s', (text, v) => {
    expect(ipVersion(text)).toBe(v);
    expect(isIpLiteral(text)).toBe(v !== 0);
  });

  it.each([
    ['127.0.0.1', true],
    ['127.255.1.2', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.53', true],
    ['128.0.0.1', false],
    ['::2', false],
    ['10.0.0.1', false],
    ['junk', false],
  ])('isLoopback(%s) = %s', (text, yes) => {
    expect(isLoopback(text)).toBe(yes);
  });

  it.each([
    ['fe80::1', true],
    ['febf::1%eth1', true],
    ['fec0::1', false],
    ['fd00::1', false],
    ['169.254.0.1', false],
  ])('isLinkLocal6(%s) = %s', (text, yes) => {
    expect(isLinkLocal6(text)).toBe(yes);
  });

  it('addressBytes: network order, 4 or 16 bytes', () => {
    expect(addressBytes('10.1.2.3')).toEqual([10, 1, 2, 3]);
    expect(addressBytes('fd00::1:2')).toEqual([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]);
    expect(addressBytes('::ffff:1.2.3.4')?.slice(10)).toEqual([0xff, 0xff, 1, 2, 3, 4]);
    expect(addressBytes('1.2.3.256')).toBeUndefined();
  });
});
