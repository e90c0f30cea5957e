import { describe, expect, it } from 'vitest';
import { DnsnetError } from '../../src/errors.js';
import {
  isValidNdots,
  parseAddHost,
  parseDnsServer,
  validateDnsOption,
  validateDnsSearch,
  validateAlias,
  validateHostname,
} from '../../src/resolvconf/validate.js';

function failure(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DnsnetError);
    const err = e as DnsnetError;
    return { code: err.code, message: err.message };
  }
  throw new Error('expected an error');
}

describe('parseDnsServer', () => {
  it.each(['1.1.1.1', '127.0.0.53', '2001:db8::1', '::1', 'fe80::1%eth0'])('accepts %s', (s) => {
    expect(parseDnsServer(s)).toBe(s);
  });
  it.each(['x', '', '1.2.3', '1.2.3.4.5', '1.1.1.1:53', '[::1]', ' 1.1.1.1'])('rejects %j', (s) => {
    expect(failure(() => parseDnsServer(s))).toEqual({
      code: 'invalid',
      message: `invalid --dns value ${JSON.stringify(s)}: not an IP address`,
    });
  });
});

describe('validateDnsSearch', () => {
  it.each(['.', 'example.com', 'example.com.', 'a', 'corp-1.example', '_msdcs.example.com'])('accepts %s', (d) => {
    expect(validateDnsSearch(d)).toBe(d);
  });
  it.each<[string, string]>([
    ['', 'not a domain name (empty)'],
    ['a..b', 'not a domain name (empty label)'],
    ['-a.example', 'not a domain name (bad label "-a")'],
    ['a b', 'not a domain name (bad label "a b")'],
    ['x'.repeat(64), `not a domain name (bad label "${'x'.repeat(64)}")`],
    [`${'a.'.repeat(127)}ab`, 'not a domain name (longer than 253 characters)'],
  ])('rejects %j', (d, why) => {
    expect(failure(() => validateDnsSearch(d))).toEqual({
      code: 'invalid',
      message: `invalid --dns-search value ${JSON.stringify(d)}: ${why}`,
    });
  });
});

describe('validateDnsOption', () => {
  it.each(['ndots:0', 'ndots:15', 'edns0', 'timeout:3', 'use-vc', 'no_tld_query'])('accepts %s', (o) => {
    expect(validateDnsOption(o)).toBe(o);
  });
  it.each<[string, string]>([
    ['', 'want name or name:value, without spaces'],
    ['a b', 'want name or name:value, without spaces'],
    ['timeout:', 'want name or name:value, without spaces'],
    [':3', 'want name or name:value, without spaces'],
    ['ndots', 'ndots needs a whole number from 0 to 15'],
    ['ndots:16', 'ndots needs a whole number from 0 to 15'],
    ['ndots:-1', 'ndots needs a whole number from 0 to 15'],
    ['ndots:x', 'ndots needs a whole number from 0 to 15'],
  ])('rejects %j', (o, why) => {
    expect(failure(() => validateDnsOption(o))).toEqual({
      code: 'invalid',
      message: `invalid --dns-option value ${JSON.stringify(o)}: ${why}`,
    });
  });
});

describe('isValidNdots', () => {
  it.each<[string, boolean]>([
    ['ndots:0', true],
    ['ndots:5', true],
    ['ndots:15', true],
    ['ndots:16', false],
    ['ndots:007', false],
    ['ndots:', false],
    ['ndots:1.5', false],
    ['ndots', false],
    ['edns0', false],
  ])('%s -> %s', (o, want) => {
    expect(isValidNdots(o)).toBe(want);
  });
});

describe('validateHostname', () => {
  it.each(['web', 'web-1', 'a.b', 'db.example.com', '0abc', 'x'.repeat(63)])('accepts %s', (h) => {
    expect(validateHostname(h)).toBe(h);
  });
  it.each<[string, string]>([
    ['', 'not a valid hostname (empty)'],
    ['-web', 'not a valid hostname (bad label "-web")'],
    ['web-', 'not a valid hostname (bad label "web-")'],
    ['we_b', 'not a valid hostname (bad label "we_b")'],
    ['a.', 'not a valid hostname (empty label)'],
    ['x'.repeat(64), `not a valid hostname (bad label "${'x'.repeat(64)}")`],
  ])('rejects %j', (h, why) => {
    expect(failure(() => validateHostname(h))).toEqual({
      code: 'invalid',
      message: `invalid --hostname value ${JSON.stringify(h)}: ${why}`,
    });
  });
  it('names the flag it checks', () => {
    expect(failure(() => validateHostname('a_b', '--network-alias')).message).toBe(
      'invalid --network-alias value "a_b": not a valid hostname (bad label "a_b")',
    );
  });
});

describe('validateAlias', () => {
  // Docker takes aliases with `_` (Compose registers service names as aliases): my_alias, aone_nw.
  it.each(['my_alias', 'aone_nw', '_svc', 'web', 'a.b_c', 'svc.']) ('accepts %s', (a) => {
    expect(validateAlias(a, '--network-alias')).toBe(a);
  });
  it.each([['', 'empty'], ['bad alias', 'bad label "bad alias"'], ['a\nb', 'bad label "a\\nb"'], ['x'.repeat(64), `bad label "${'x'.repeat(64)}"`]])('rejects %j', (a, why) => {
    expect(failure(() => validateAlias(a, '--alias'))).toEqual({ code: 'invalid', message: `invalid --alias value ${JSON.stringify(a)}: not a valid alias (${why})` });
  });
});

describe('parseAddHost', () => {
  it.each<[string, string | undefined, { name: string; ip: string }]>([
    ['db:10.0.0.5', undefined, { name: 'db', ip: '10.0.0.5' }],
    ['db.example:10.0.0.5', undefined, { name: 'db.example', ip: '10.0.0.5' }],
    ['v6:2001:db8::5', undefined, { name: 'v6', ip: '2001:db8::5' }],
    ['v6:[2001:db8::5]', undefined, { name: 'v6', ip: '2001:db8::5' }],
    ['lo6:::1', undefined, { name: 'lo6', ip: '::1' }],
    ['gw:host-gateway', '172.17.0.1', { name: 'gw', ip: '172.17.0.1' }],
  ])('%s', (s, gw, want) => {
    expect(parseAddHost(s, gw)).toEqual(want);
  });
  it.each<[string, string | undefined, string]>([
    ['db', undefined, 'want NAME:IP'],
    [':10.0.0.5', undefined, 'not a valid hostname (empty)'],
    ['d_b:10.0.0.5', undefined, 'not a valid hostname (bad label "d_b")'],
    ['db:', undefined, '"" is not an IP address'],
    ['db:10.0.0', undefined, '"10.0.0" is not an IP address'],
    ['db=10.0.0.5', undefined, 'want NAME:IP'],
    ['gw:host-gateway', undefined, 'no host gateway address is known'],
  ])('rejects %j', (s, gw, why) => {
    expect(failure(() => parseAddHost(s, gw))).toEqual({
      code: 'invalid',
      message: `invalid --add-host value ${JSON.stringify(s)}: ${why}`,
    });
  });
});
