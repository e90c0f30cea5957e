// Record store: names per network, scoping by asker, link aliases, reverse names, atomic replacement.
import { describe, expect, it } from 'vitest';
import { RecordStore, normalizeName, reverseName } from '../../src/resolver/records.js';
import { addressBytes } from '../../src/ip/index.js';
import { BRIDGE2, CLIENT, DB, LINKER, LONER, SECRET, WEB, hexId, makeStore } from './fixtures.js';

const sorted = (a: string[] | undefined) => (a ? [...a].sort() : undefined);

describe('RecordStore.lookup', () => {
  const store = makeStore();
  it.each([
    ['container name', CLIENT, 'web', ['10.1.0.2'], ['fd00:1::2']],
    ['alias', CLIENT, 'www', ['10.1.0.2'], ['fd00:1::2']],
    ['alias given in mixed case', CLIENT, 'front', ['10.1.0.2'], ['fd00:1::2']],
    ['short id', CLIENT, WEB.slice(0, 12), ['10.1.0.2'], ['fd00:1::2']],
    ['hostname', CLIENT, 'webhost', ['10.1.0.2'], ['fd00:1::2']],
    ['name.network', CLIENT, 'web.app', ['10.1.0.2'], ['fd00:1::2']],
    ['alias.network', CLIENT, 'www.app', ['10.1.0.2'], ['fd00:1::2']],
    ['no ipv6', CLIENT, 'db', ['10.1.0.3'], []],
    ['other network invisible', CLIENT, 'secret', undefined, undefined],
    ['other network by name.network invisible', CLIENT, 'secret.other', undefined, undefined],
    ['own name', WEB, 'web', ['10.1.0.2'], ['fd00:1::2']],
    ['shared alias, asker on one network', CLIENT, 'shared', ['10.1.0.6'], []],
    ['shared alias, asker on both networks: union', BRIDGE2, 'shared', ['10.1.0.6', '10.2.0.5'], []],
    ['seen from other network', SECRET, 'bridge2', ['10.2.0.6'], []],
    ['link alias for the linker', LINKER, 'database', ['10.1.0.3'], []],
    ['link alias hidden from others', CLIENT, 'database', undefined, undefined],
    ['asker with no networks', LONER, 'web', undefined, undefined],
    ['unknown asker', 'f'.repeat(64), 'web', undefined, undefined],
    ['unknown name', CLIENT, 'nope', undefined, undefined],
  ])('%s', (_, asker, name, v4, v6) => {
    const r = store.lookup(asker, name);
    expect(sorted(r?.ipv4)).toEqual(v4 && sorted(v4));
    expect(sorted(r?.ipv6)).toEqual(v6 && sorted(v6));
    if (r) {
      expect(r.a.length).toBe(r.ipv4.length);
      expect(r.aaaa.length).toBe(r.ipv6.length);
    }
  });

  it('returns every address of a name shared through aliases', () => {
    expect(store.lookup(CLIENT, 'big')?.ipv4).toHaveLength(60);
  });

  it('prepares A records with a pointer to the question name and TTL 600', () => {
    const rr = store.lookup(CLIENT, 'db')!.a[0]!;
    expect(rr.toString('hex')).toBe('c00c' + '0001' + '0001' + '00000258' + '0004' + '0a010003');
  });
});

describe('RecordStore changes', () => {
  it('remove makes names disappear, upsert replaces addresses and names', () => {
    const store = makeStore();
    store.remove(DB);
    expect(store.lookup(CLIENT, 'db')).toBeUndefined();
    expect(store.lookup(LINKER, 'database')).toBeUndefined();
    store.upsert({ id: WEB, name: 'web', hostname: 'webhost', endpoints: [{ network: 'app', ipv4: '10.1.0.9', aliases: [] }], links: [] });
    expect(store.lookup(CLIENT, 'web')?.ipv4).toEqual(['10.1.0.9']);
    expect(store.lookup(CLIENT, 'www')).toBeUndefined();
    expect(store.remove('0'.repeat(64))).toBe(false);
  });

  it('link aliases follow the target when it comes back with a new address', () => {
    const store = makeStore();
    store.upsert({ id: DB, name: 'db', hostname: 'db', endpoints: [{ network: 'app', ipv4: '10.1.0.33', aliases: [] }], links: [] });
    expect(store.lookup(LINKER, 'database')?.ipv4).toEqual(['10.1.0.33']);
  });

  it('moving a container to another network moves the asker view too', () => {
    const store = makeStore();
    store.upsert({ id: CLIENT, name: 'client', hostname: 'client', endpoints: [{ network: 'other', ipv4: '10.2.0.9', aliases: [] }], links: [] });
    expect(store.lookup(CLIENT, 'web')).toBeUndefined();
    expect(store.lookup(CLIENT, 'secret')?.ipv4).toEqual(['10.2.0.5']);
    expect(store.lookup(WEB, 'client')).toBeUndefined();
  });

  it('handles 2000 containers on one network quickly', () => {
    const store = new RecordStore();
    const t0 = performance.now();
    for (let i = 0; i < 2000; i++) {
      store.upsert({ id: hexId(`n${i}`), name: `c${i}`, hostname: `h${i}`, endpoints: [{ network: 'n', ipv4: `10.9.${i >> 8}.${i & 255}`, aliases: [] }], links: [] });
    }
    const ms = performance.now() - t0;
    expect(store.lookup(hexId('n5'), 'c1999')?.ipv4).toEqual(['10.9.7.207']);
    expect(ms).toBeLessThan(2_000); // each change touches only its own names
  });
});

describe('RecordStore.lookupReverse', () => {
  const store = makeStore();
  it.each([
    ['ipv4 of a container', CLIENT, reverseName('10.1.0.2')!, 'web.app'],
    ['ipv6 of a container', CLIENT, reverseName('fd00:1::2')!, 'web.app'],
    ['other network invisible', CLIENT, reverseName('10.2.0.5')!, undefined],
    ['other network for its members', BRIDGE2, reverseName('10.2.0.5')!, 'secret.other'],
    ['not a container', CLIENT, reverseName('10.1.0.200')!, undefined],
  ])('%s', (_, asker, name, target) => {
    expect(store.lookupReverse(asker, name)?.targets[0]).toBe(target);
  });
});

describe('helpers', () => {
  it.each([
    ['10.1.2.3', '3.2.1.10.in-addr.arpa'],
    ['fd00:1::2', '2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa'],
    ['::ffff:1.2.3.4', '4.0.3.0.2.0.1.0.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa'],
    ['nonsense', undefined],
  ])('reverseName(%s)', (ip, expected) => {
    expect(reverseName(ip)).toBe(expected);
  });
  it.each([['::'], ['::1'], ['1:2:3:4:5:6:7:8'], ['fe80::1%eth0']])('addressBytes(%s) has 16 bytes', (ip) => {
    expect(addressBytes(ip)).toHaveLength(16);
  });
  it.each([['1:2:3:4:5:6:7:8:9'], ['1::2::3'], ['12345::'], ['1:2:3']])('addressBytes(%s) rejects', (ip) => {
    expect(addressBytes(ip)).toBeUndefined();
  });
  it('normalizeName lower-cases and drops one trailing dot', () => {
    expect(normalizeName('Web.App.')).toBe('web.app');
  });
});
