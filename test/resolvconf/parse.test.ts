import { describe, expect, it } from 'vitest';
import { MAX_ENTRIES, MAX_LINE_LENGTH, parseResolvConf, type ResolvConf } from '../../src/resolvconf/parse.js';

const empty: ResolvConf = { nameservers: [], search: [], options: [], other: [], invalid: [] };

describe('parseResolvConf', () => {
  it.each<[string, string, Partial<ResolvConf>]>([
    ['empty file', '', {}],
    ['blank lines and whitespace', '\n   \n\t\n', {}],
    ['comments with # and ;', '# nameserver 1.1.1.1\n; search x\nnameserver 9.9.9.9\n', { nameservers: ['9.9.9.9'] }],
    ['nameservers in order', 'nameserver 1.1.1.1\nnameserver 2001:db8::1\nnameserver 10.0.0.1\n', {
      nameservers: ['1.1.1.1', '2001:db8::1', '10.0.0.1'],
    }],
    ['IPv6 with zone', 'nameserver fe80::1%eth0\n', { nameservers: ['fe80::1%eth0'] }],
    ['tabs and trailing words', 'nameserver\t1.1.1.1  # cloudflare\n', { nameservers: ['1.1.1.1'] }],
    ['invalid nameservers recorded', 'nameserver 1.2.3\nnameserver dns.example\nnameserver 8.8.8.8\n', {
      nameservers: ['8.8.8.8'],
      invalid: ['1.2.3', 'dns.example'],
    }],
    ['IPv4 with a zone is invalid', 'nameserver 1.2.3.4%eth0\n', { invalid: ['1.2.3.4%eth0'] }],
    ['bare nameserver keyword ignored', 'nameserver\n', {}],
    ['search list', 'search a.example b.example\n', { search: ['a.example', 'b.example'] }],
    ['last search wins', 'search a.example\nsearch b.example c.example\n', { search: ['b.example', 'c.example'] }],
    ['domain after search wins', 'search a.example b.example\ndomain c.example\n', { search: ['c.example'] }],
    ['search after domain wins', 'domain c.example\nsearch a.example\n', { search: ['a.example'] }],
    ['domain takes one word', 'domain c.example d.example\n', { search: ['c.example'] }],
    ['empty search clears', 'search a.example\nsearch\n', {}],
    ['options accumulate', 'options ndots:2 edns0\noptions  rotate\ttimeout:1\n', {
      options: ['ndots:2', 'edns0', 'rotate', 'timeout:1'],
    }],
    ['unknown lines kept verbatim', 'sortlist 130.155.160.0/255.255.240.0  130.155.0.0\nlookup file bind\n', {
      other: ['sortlist 130.155.160.0/255.255.240.0  130.155.0.0', 'lookup file bind'],
    }],
    ['indented comment is not a comment', '  # hi\n', { other: ['  # hi'] }],
    ['keywords are case-sensitive', 'Nameserver 1.1.1.1\n', { other: ['Nameserver 1.1.1.1'] }],
    ['CRLF line ends', 'nameserver 1.1.1.1\r\nsearch a.example\r\n', { nameservers: ['1.1.1.1'], search: ['a.example'] }],
    ['no final newline', 'nameserver 1.1.1.1', { nameservers: ['1.1.1.1'] }],
    ['line with control characters skipped', 'nameserver 1.1.1.1\u0000\nfoo\u0001bar\nnameserver 2.2.2.2\n', {
      nameservers: ['2.2.2.2'],
    }],
    ['over-long line skipped', `search ${'a'.repeat(MAX_LINE_LENGTH)}\nnameserver 1.1.1.1\n`, { nameservers: ['1.1.1.1'] }],
  ])('%s', (_name, text, want) => {
    expect(parseResolvConf(text)).toEqual({ ...empty, ...want });
  });

  it('survives binary garbage', () => {
    let bytes = '';
    let seed = 42;
    for (let i = 0; i < 200_000; i++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      bytes += String.fromCharCode(seed % 256);
    }
    expect(() => parseResolvConf(bytes)).not.toThrow();
    expect(() => parseResolvConf(Buffer.from(bytes, 'latin1').toString('utf8'))).not.toThrow();
  });

  it('survives 10 MB quickly and caps what it keeps', () => {
    const line = 'nameserver 10.0.0.1\noptions a\nunknown line\nnameserver bad\n';
    const text = line.repeat(Math.ceil(10_000_000 / line.length));
    const t0 = Date.now();
    const rc = parseResolvConf(text);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(rc.nameservers).toHaveLength(MAX_ENTRIES);
    expect(rc.options).toHaveLength(MAX_ENTRIES);
    expect(rc.other).toHaveLength(MAX_ENTRIES);
    expect(rc.invalid).toHaveLength(MAX_ENTRIES);
  });

  it('survives one 10 MB line', () => {
    expect(parseResolvConf('x'.repeat(10_000_000))).toEqual(empty);
  });
});
