import { describe, expect, it } from 'vitest';
import { parseResolvConf } from '../../src/resolvconf/parse.js';
import { buildResolvConf, chooseHostResolvConf, type ResolvConfInput } from '../../src/resolvconf/resolv-conf.js';

const HOST = '/etc/resolv.conf';
const SYSTEMD = '/run/systemd/resolve/resolv.conf';
const STUB = 'nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n';
const SYSTEMD_FILE = 'nameserver 192.168.1.1\nnameserver 2001:db8::53\nsearch lan corp.example\n';
const MIXED = 'nameserver 1.1.1.1\nnameserver 2001:db8::53\nnameserver fe80::1%eth0\nnameserver 127.0.0.1\nnameserver ::1\n';

interface Case {
  host: string; // host file text ('' = missing)
  mode: ResolvConfInput['mode'];
  ipv6?: boolean;
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  systemd?: string; // systemd-resolved's file, when the host has one
  upstreams: string[];
  nameservers: string[];
}

// Each case's expected file is fixtures/resolvconf/resolv-<name>.golden, checked by hand against SPEC 4.
const cases: Record<string, Case> = {
  'embedded-empty-host': { host: '', mode: 'embedded', upstreams: ['8.8.8.8', '8.8.4.4'], nameservers: ['127.0.0.11'] },
  'embedded-only-127-0-0-53': {
    host: STUB,
    mode: 'embedded',
    upstreams: ['127.0.0.53'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-only-127-0-0-1': {
    host: 'nameserver 127.0.0.1\n',
    mode: 'embedded',
    upstreams: ['127.0.0.1'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-mixed-ipv6-off': {
    host: MIXED,
    mode: 'embedded',
    upstreams: ['1.1.1.1', '2001:db8::53', 'fe80::1%eth0', '127.0.0.1', '::1'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-search-domain-last-wins': {
    host: 'search a.example b.example\nnameserver 10.0.0.2\ndomain c.example\n',
    mode: 'embedded',
    upstreams: ['10.0.0.2'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-options-accumulate': {
    host: 'nameserver 10.0.0.2\noptions edns0\noptions rotate timeout:2\n',
    mode: 'embedded',
    upstreams: ['10.0.0.2'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-ndots-from-host': {
    host: 'nameserver 10.0.0.2\noptions ndots:2 edns0\n',
    mode: 'embedded',
    upstreams: ['10.0.0.2'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-ndots-invalid': {
    host: 'nameserver 10.0.0.2\noptions ndots:abc edns0 ndots:99\n',
    mode: 'embedded',
    upstreams: ['10.0.0.2'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-ndots-invalid-and-valid': {
    host: 'nameserver 10.0.0.2\noptions ndots:x ndots:3\n',
    mode: 'embedded',
    upstreams: ['10.0.0.2'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-dns': {
    host: STUB,
    mode: 'embedded',
    dns: ['10.1.1.1', '127.0.0.1'],
    upstreams: ['10.1.1.1', '127.0.0.1'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-dns-search-dot': {
    host: 'nameserver 10.0.0.2\nsearch corp.example\n',
    mode: 'embedded',
    dnsSearch: ['.'],
    upstreams: ['10.0.0.2'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-dns-search-repeated': {
    host: 'nameserver 10.0.0.2\nsearch corp.example\n',
    mode: 'embedded',
    dnsSearch: ['a.example', 'b.example'],
    upstreams: ['10.0.0.2'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-dns-option-ndots': {
    host: 'nameserver 10.0.0.2\noptions ndots:1 rotate\n',
    mode: 'embedded',
    dnsOptions: ['ndots:5', 'timeout:2'],
    upstreams: ['10.0.0.2'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-dns-option-no-ndots': {
    host: 'nameserver 10.0.0.2\noptions ndots:1\n',
    mode: 'embedded',
    dnsOptions: ['rotate', 'attempts:3'],
    upstreams: ['10.0.0.2'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-all-flags': {
    host: 'nameserver 10.0.0.2\nsearch corp.example\noptions ndots:1\n',
    mode: 'embedded',
    dns: ['9.9.9.9', '2001:db8::9'],
    dnsSearch: ['x.example'],
    dnsOptions: ['edns0'],
    upstreams: ['9.9.9.9', '2001:db8::9'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-invalid-nameserver': {
    host: 'nameserver 1.2.3\nnameserver 9.9.9.9\nnameserver dns.example\n',
    mode: 'embedded',
    upstreams: ['9.9.9.9'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-unknown-lines': {
    host: 'sortlist 130.155.160.0/255.255.240.0\nnameserver 10.0.0.2\nlookup file bind\noptions edns0\n',
    mode: 'embedded',
    upstreams: ['10.0.0.2'],
    nameservers: ['127.0.0.11'],
  },
  'embedded-systemd-redirect': {
    host: STUB,
    systemd: SYSTEMD_FILE,
    mode: 'embedded',
    upstreams: ['192.168.1.1', '2001:db8::53'],
    nameservers: ['127.0.0.11'],
  },
  'legacy-empty-host': { host: '', mode: 'legacy', upstreams: [], nameservers: ['8.8.8.8', '8.8.4.4'] },
  'legacy-empty-host-ipv6': {
    host: '',
    mode: 'legacy',
    ipv6: true,
    upstreams: [],
    nameservers: ['8.8.8.8', '8.8.4.4', '2001:4860:4860::8888', '2001:4860:4860::8844'],
  },
  'legacy-only-127-0-0-53': { host: STUB, mode: 'legacy', upstreams: [], nameservers: ['8.8.8.8', '8.8.4.4'] },
  'legacy-only-loopback-ipv6': {
    host: 'nameserver ::1\nnameserver 127.0.0.1\n',
    mode: 'legacy',
    ipv6: true,
    upstreams: [],
    nameservers: ['8.8.8.8', '8.8.4.4', '2001:4860:4860::8888', '2001:4860:4860::8844'],
  },
  'legacy-mixed-ipv6-off': {
    host: MIXED,
    mode: 'legacy',
    upstreams: [],
    nameservers: ['1.1.1.1', 'fe80::1%eth0'],
  },
  'legacy-mixed-ipv6-on': {
    host: MIXED,
    mode: 'legacy',
    ipv6: true,
    upstreams: [],
    nameservers: ['1.1.1.1', '2001:db8::53', 'fe80::1%eth0'],
  },
  'legacy-only-ipv6-ipv6-off': {
    host: 'nameserver 2001:db8::53\n',
    mode: 'legacy',
    upstreams: [],
    nameservers: ['8.8.8.8', '8.8.4.4'],
  },
  'legacy-link-local-ipv6-off': {
    host: 'nameserver fe80::53\n',
    mode: 'legacy',
    upstreams: [],
    nameservers: ['fe80::53'],
  },
  'legacy-dns-unfiltered': {
    host: MIXED,
    mode: 'legacy',
    dns: ['127.0.0.1', '2001:db8::1'],
    upstreams: [],
    nameservers: ['127.0.0.1', '2001:db8::1'],
  },
  'legacy-search-options-flags': {
    host: 'nameserver 10.0.0.2\nsearch corp.example\noptions ndots:3\n',
    mode: 'legacy',
    dnsSearch: ['.'],
    dnsOptions: ['ndots:1', 'edns0'],
    upstreams: [],
    nameservers: ['10.0.0.2'],
  },
  'legacy-host-options-untouched': {
    host: 'nameserver 10.0.0.2\ndomain corp.example\noptions ndots:abc\noptions rotate\n',
    mode: 'legacy',
    upstreams: [],
    nameservers: ['10.0.0.2'],
  },
  'legacy-invalid-nameserver-unknown-lines': {
    host: 'nameserver bogus\nnameserver 10.0.0.2\nsortlist 10.0.0.0/255.0.0.0\n',
    mode: 'legacy',
    upstreams: [],
    nameservers: ['10.0.0.2'],
  },
  'legacy-systemd-redirect': {
    host: STUB,
    systemd: SYSTEMD_FILE,
    mode: 'legacy',
    upstreams: [],
    nameservers: ['192.168.1.1'],
  },
};

describe('buildResolvConf', () => {
  it.each(Object.entries(cases))('%s', async (name, c) => {
    const chosen = chooseHostResolvConf(c.host, HOST, c.systemd, SYSTEMD);
    const out = buildResolvConf({
      host: parseResolvConf(chosen.text),
      hostPath: chosen.path,
      mode: c.mode,
      ipv6: c.ipv6 ?? false,
      dns: c.dns ?? [],
      dnsSearch: c.dnsSearch ?? [],
      dnsOptions: c.dnsOptions ?? [],
    });
    expect(out.upstreams).toEqual(c.upstreams);
    expect(out.nameservers).toEqual(c.nameservers);
    // The output is itself a resolv.conf that parses back to what it lists.
    expect(parseResolvConf(out.text).nameservers).toEqual(c.nameservers);
    expect(out.text.endsWith('\n')).toBe(true);
    await expect(out.text).toMatchFileSnapshot(`../../fixtures/resolvconf/resolv-${name}.golden`);
  });

  it('marks the comment block so each line stays one comment', () => {
    const out = buildResolvConf({
      host: parseResolvConf(''),
      hostPath: '/tmp/odd\nnameserver 6.6.6.6',
      mode: 'legacy',
      ipv6: false,
      dns: [],
      dnsSearch: [],
      dnsOptions: [],
    });
    expect(parseResolvConf(out.text).nameservers).toEqual(['8.8.8.8', '8.8.4.4']);
  });
});

describe('chooseHostResolvConf', () => {
  it.each<[string, string, string | undefined, 'host' | 'systemd']>([
    ['only the stub', STUB, SYSTEMD_FILE, 'systemd'],
    ['the stub twice', 'nameserver 127.0.0.53\nnameserver 127.0.0.53\n', SYSTEMD_FILE, 'systemd'],
    ['stub but no systemd file', STUB, undefined, 'host'],
    ['stub and another', 'nameserver 127.0.0.53\nnameserver 1.1.1.1\n', SYSTEMD_FILE, 'host'],
    ['another loopback', 'nameserver 127.0.0.1\n', SYSTEMD_FILE, 'host'],
    ['no nameserver', 'search lan\n', SYSTEMD_FILE, 'host'],
    ['empty host file', '', SYSTEMD_FILE, 'host'],
  ])('%s -> %s', (_name, text, systemdText, want) => {
    const got = chooseHostResolvConf(text, HOST, systemdText, SYSTEMD);
    expect(got).toEqual(want === 'host' ? { text, path: HOST } : { text: systemdText, path: SYSTEMD });
  });

  it('defaults to systemd-resolved path', () => {
    expect(chooseHostResolvConf(STUB, HOST, 'x').path).toBe('/run/systemd/resolve/resolv.conf');
  });
});
