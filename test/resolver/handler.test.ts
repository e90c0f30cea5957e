// Query handler: query/answer tables (dns-packet builds queries and reads replies), error rules, EDNS, truncation, fuzz.
import dnsPacket, { type Answer, type Packet } from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { handleQuery, type HandlerResult } from '../../src/resolver/handler.js';
import { RecordStore } from '../../src/resolver/records.js';
import { BRIDGE2, CLIENT, LINKER, WEB, hexId, makeStore, query } from './fixtures.js';

const store = makeStore();

function reply(r: HandlerResult): Packet & { rcode?: string } {
  expect(r.action).toBe('reply');
  if (r.action !== 'reply') throw new Error('not a reply');
  return dnsPacket.decode(r.reply) as Packet & { rcode?: string };
}

const data = (answers: Answer[] | undefined): string[] => (answers ?? []).map((a) => String((a as { data: unknown }).data)).sort();

describe('handleQuery: local answers', () => {
  it.each([
    // name, type, asker, rcode, answers
    ['web', 'A', CLIENT, 'NOERROR', ['10.1.0.2']],
    ['web', 'AAAA', CLIENT, 'NOERROR', ['fd00:1::2']],
    ['web.', 'A', CLIENT, 'NOERROR', ['10.1.0.2']],
    ['WWW.APP', 'A', CLIENT, 'NOERROR', ['10.1.0.2']],
    ['webhost', 'A', CLIENT, 'NOERROR', ['10.1.0.2']],
    [WEB.slice(0, 12), 'A', CLIENT, 'NOERROR', ['10.1.0.2']],
    ['db', 'AAAA', CLIENT, 'NOERROR', []], // NODATA, not NXDOMAIN
    ['db', 'MX', CLIENT, 'NOERROR', []],
    ['db', 'TXT', CLIENT, 'NOERROR', []],
    ['shared', 'A', BRIDGE2, 'NOERROR', ['10.1.0.6', '10.2.0.5']],
    ['database', 'A', LINKER, 'NOERROR', ['10.1.0.3']],
    ['2.0.1.10.in-addr.arpa', 'PTR', CLIENT, 'NOERROR', ['web.app']],
    ['2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa', 'PTR', CLIENT, 'NOERROR', ['web.app']],
    ['5.0.2.10.IN-ADDR.ARPA', 'PTR', BRIDGE2, 'NOERROR', ['secret.other']],
    // ANY: the name's addresses, both families (RFC 8482), not NODATA.
    ['web', 'ANY', CLIENT, 'NOERROR', ['10.1.0.2', 'fd00:1::2']],
    ['db', 'ANY', CLIENT, 'NOERROR', ['10.1.0.3']],
  ])('%s %s -> %s %j', (name, type, asker, rcode, answers) => {
    const r = handleQuery(query(name, type), asker, store, 'udp');
    const p = reply(r);
    expect(p.rcode).toBe(rcode);
    expect(data(p.answers)).toEqual(answers);
    for (const a of p.answers ?? []) {
      expect(a.name).toBe(name.replace(/\.$/, '')); // owner exactly as asked
      expect((a as { ttl: number }).ttl).toBe(600);
    }
    expect(p.questions?.[0]?.name).toBe(name.replace(/\.$/, ''));
  });

  it.each([
    ['secret', 'A', CLIENT], // other network
    ['secret.other', 'A', CLIENT],
    ['database', 'A', CLIENT], // someone else's link alias
    ['example.com', 'A', CLIENT],
    ['5.0.2.10.in-addr.arpa', 'PTR', CLIENT], // other network's address
    ['200.0.1.10.in-addr.arpa', 'PTR', CLIENT], // not a container
    ['', 'NS', CLIENT], // the root
    ['web', 'A', 'f'.repeat(64)], // unknown asker
  ])('%s %s from %s -> forward', (name, type, asker) => {
    const r = handleQuery(query(name, type), asker, store, 'udp');
    expect(r.action).toBe('forward');
  });

  it('keeps mixed case by copying the question, sets flags, copies ID and RD', () => {
    const r = handleQuery(query('WeB.aPp', 'A', { id: 0xbeef }), CLIENT, store, 'udp');
    const p = reply(r);
    expect(p.id).toBe(0xbeef);
    expect(p.answers?.[0]?.name).toBe('WeB.aPp');
    expect(p.flag_qr).toBe(true);
    expect(p.flag_rd).toBe(true);
    expect(p.flag_ra).toBe(true);
    expect(p.flag_aa).toBe(true);
    const norec = reply(handleQuery(query('web', 'A', { flags: 0 }), CLIENT, store, 'udp'));
    expect(norec.flag_rd).toBe(false);
  });

  it('answers a non-IN class by forwarding', () => {
    const q = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'web', type: 'A', class: 'CH' }] });
    expect(handleQuery(q, CLIENT, store, 'udp').action).toBe('forward');
  });

  it('shuffles the order of addresses', () => {
    const orders = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const p = reply(handleQuery(query('big', 'A', { edns: 4096 }), CLIENT, store, 'udp'));
      orders.add((p.answers ?? []).map((a) => String((a as { data: unknown }).data)).join(','));
    }
    expect(orders.size).toBeGreaterThan(1);
  });
});

describe('handleQuery: protocol rules', () => {
  const header = (flags: number, qd: number) => {
    const b = Buffer.alloc(12);
    b.writeUInt16BE(7, 0);
    b.writeUInt16BE(flags, 2);
    b.writeUInt16BE(qd, 4);
    return b;
  };
  it.each([
    ['QR set', () => dnsPacket.encode({ type: 'response', id: 1, questions: [{ name: 'web', type: 'A' }] }), 'drop', undefined],
    ['11 bytes', () => Buffer.alloc(11), 'drop', undefined],
    ['empty', () => Buffer.alloc(0), 'drop', undefined],
    ['no question', () => header(0x0100, 0), 'reply', 'FORMERR'],
    ['two questions', () => dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'web', type: 'A' }, { name: 'db', type: 'A' }] }), 'reply', 'FORMERR'],
    ['question cut short', () => query('web', 'A').subarray(0, 16), 'reply', 'FORMERR'],
    ['type/class missing', () => query('web', 'A').subarray(0, 17), 'reply', 'FORMERR'],
    ['compression pointer in question', () => Buffer.concat([header(0, 1), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]), 'reply', 'FORMERR'],
    ['label too long', () => Buffer.concat([header(0, 1), Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0, 0, 1, 0, 1])]), 'reply', 'FORMERR'],
    ['arcount beyond the message', () => { const q = query('web', 'A'); q.writeUInt16BE(1, 10); return q; }, 'reply', 'FORMERR'],
    ['two OPT records', () => { const q = query('web', 'A', { edns: 1232 }); const opt = q.subarray(q.length - 11); const b = Buffer.concat([q, opt]); b.writeUInt16BE(2, 10); return b; }, 'reply', 'FORMERR'],
    ['opcode STATUS', () => { const q = query('web', 'A'); q[2] = q[2]! | (2 << 3); return q; }, 'reply', 'NOTIMP'],
    ['opcode UPDATE, no question', () => header(5 << 11, 0), 'reply', 'NOTIMP'],
  ])('%s -> %s %s', (_, make, action, rcode) => {
    const r = handleQuery(make(), CLIENT, store, 'udp');
    expect(r.action).toBe(action);
    if (rcode) {
      const p = reply(r);
      expect(p.rcode).toBe(rcode);
      expect(p.flag_qr).toBe(true);
    }
  });

  it('answers PTR with SERVFAIL when the name is no valid DNS name (a label over 63 bytes), as Docker does', () => {
    const s = new RecordStore();
    const long = `c${'x'.repeat(69)}`;
    const asker = hexId('asker');
    s.upsert({ id: hexId('long'), name: long, hostname: 'h', endpoints: [{ network: 'app', ipv4: '10.9.0.9', aliases: [] }], links: [] });
    s.upsert({ id: asker, name: 'asker', hostname: 'asker', endpoints: [{ network: 'app', ipv4: '10.9.0.10', aliases: [] }], links: [] });
    expect(reply(handleQuery(query('9.0.9.10.in-addr.arpa', 'PTR'), asker, s, 'udp')).rcode).toBe('SERVFAIL');
    // A name of exactly 63 bytes is fine.
    s.upsert({ id: hexId('long'), name: 'y'.repeat(63), hostname: 'h', endpoints: [{ network: 'app', ipv4: '10.9.0.9', aliases: [] }], links: [] });
    expect(data(reply(handleQuery(query('9.0.9.10.in-addr.arpa', 'PTR'), asker, s, 'udp')).answers)).toEqual([`${'y'.repeat(63)}.app`]);
  });

  it('keeps the question in NOTIMP when it reads cleanly', () => {
    const q = query('web', 'A');
    q[2] = q[2]! | (4 << 3); // NOTIFY
    const p = reply(handleQuery(q, CLIENT, store, 'udp'));
    expect(p.questions?.[0]?.name).toBe('web');
    expect(p.opcode).toBe('NOTIFY');
  });
});

describe('handleQuery: EDNS and truncation', () => {
  const opt = (p: Packet) => (p.additionals ?? []).find((a) => a.type === 'OPT') as { udpPayloadSize: number; ednsVersion: number; extendedRcode: number } | undefined;

  it('answers EDNS with an OPT record of version 0', () => {
    const p = reply(handleQuery(query('web', 'A', { edns: 4096 }), CLIENT, store, 'udp'));
    expect(opt(p)).toMatchObject({ ednsVersion: 0, extendedRcode: 0 });
    expect(data(p.answers)).toEqual(['10.1.0.2']);
  });

  it.each([
    ['a local answer', () => query('web', 'A', { edns: 1232, dnssecOk: true })],
    ['NODATA', () => query('db', 'AAAA', { edns: 1232, dnssecOk: true })],
    ['PTR', () => query('2.0.1.10.in-addr.arpa', 'PTR', { edns: 1232, dnssecOk: true })],
  ])('copies the DO bit into the OPT of %s (RFC 3225)', (_, make) => {
    const o = opt(reply(handleQuery(make(), CLIENT, store, 'udp'))) as { flag_do?: boolean } | undefined;
    expect(o?.flag_do).toBe(true);
    const plain = opt(reply(handleQuery(query('web', 'A', { edns: 1232 }), CLIENT, store, 'udp'))) as { flag_do?: boolean };
    expect(plain.flag_do).toBe(false);
  });

  it.each([
    ['NOTIMP (opcode STATUS)', () => { const q = query('web', 'A', { edns: 1232, dnssecOk: true }); q[2] = q[2]! | (2 << 3); return q; }, 'NOTIMP'],
    ['NOTIMP, no question', () => { const q = query('web', 'A', { edns: 1232, dnssecOk: true }); const b = Buffer.concat([q.subarray(0, 12), q.subarray(q.length - 11)]); b.writeUInt16BE(0, 4); b[2] = b[2]! | (5 << 3); return b; }, 'NOTIMP'],
    ['FORMERR (no question)', () => { const q = query('web', 'A', { edns: 1232, dnssecOk: true }); const b = Buffer.concat([q.subarray(0, 12), q.subarray(q.length - 11)]); b.writeUInt16BE(0, 4); return b; }, 'FORMERR'],
    ['FORMERR (two questions)', () => dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'web', type: 'A' }, { name: 'db', type: 'A' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: dnsPacket.DNSSEC_OK } as never] }), 'FORMERR'],
    ['FORMERR (two OPT records)', () => { const q = query('web', 'A', { edns: 1232, dnssecOk: true }); const o = q.subarray(q.length - 11); const b = Buffer.concat([q, o]); b.writeUInt16BE(2, 10); return b; }, 'FORMERR'],
  ])('an EDNS query refused with %s gets an OPT back (RFC 6891 7)', (_, make, rcode) => {
    const p = reply(handleQuery(make(), CLIENT, store, 'udp'));
    expect(p.rcode).toBe(rcode);
    expect(opt(p)).toMatchObject({ ednsVersion: 0 });
  });

  it('answers no OPT without EDNS', () => {
    const p = reply(handleQuery(query('web', 'A'), CLIENT, store, 'udp'));
    expect(opt(p)).toBeUndefined();
  });

  it('answers EDNS version 1 with BADVERS (extended rcode 1) and an OPT of version 0', () => {
    const r = handleQuery(query('web', 'A', { edns: 4096, ednsVersion: 1 }), CLIENT, store, 'udp');
    const p = reply(r);
    expect(p.answers ?? []).toHaveLength(0);
    expect(opt(p)).toMatchObject({ ednsVersion: 0, extendedRcode: 1 });
    expect(r.action === 'reply' && r.rcode).toBe(16);
  });

  it.each([
    ['UDP, no EDNS', 'udp', undefined, 512, true],
    ['UDP, EDNS 512', 'udp', 512, 512, true],
    ['UDP, EDNS 100 counts as 512', 'udp', 100, 512, true],
    ['UDP, EDNS 1232', 'udp', 1232, 1232, false],
    ['TCP, no EDNS', 'tcp', undefined, 65535, false],
  ] as const)('60 addresses over %s', (_, transport, edns, limit, tc) => {
    const r = handleQuery(query('big', 'A', edns === undefined ? {} : { edns }), CLIENT, store, transport);
    const p = reply(r);
    expect(r.action === 'reply' && r.reply.length).toBeLessThanOrEqual(limit);
    expect(p.flag_tc).toBe(tc);
    if (tc) {
      expect(p.answers!.length).toBeGreaterThan(0);
      expect(p.answers!.length).toBeLessThan(60);
    } else expect(p.answers).toHaveLength(60);
  });
});

describe('handleQuery: fuzz', () => {
  it('20 000 random and mutated queries: nothing throws, every reply parses', () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const seeds = [
      query('web', 'A'),
      query('WeB.app', 'AAAA', { edns: 1232 }),
      query('big', 'A', { edns: 600 }),
      query('2.0.1.10.in-addr.arpa', 'PTR'),
      query('example.com', 'MX', { edns: 4096 }),
      query('database', 'A', { edns: 1232, ednsVersion: 1 }),
    ];
    const askers = [CLIENT, LINKER, BRIDGE2, 'x'];
    let replies = 0;
    let forwards = 0;
    let drops = 0;
    for (let i = 0; i < 20_000; i++) {
      let msg: Buffer;
      if (i % 4 === 0) {
        msg = Buffer.alloc(rnd(80));
        for (let j = 0; j < msg.length; j++) msg[j] = rnd(256);
        if (i % 8 === 0 && msg.length > 5) (msg[2] = msg[2]! & 0x7f, msg.writeUInt16BE(1, 4)); // mostly valid headers
      } else {
        msg = Buffer.from(seeds[rnd(seeds.length)]!);
        const flips = 1 + rnd(4);
        for (let f = 0; f < flips; f++) {
          const op = rnd(3);
          if (op === 0 && msg.length > 0) msg[rnd(msg.length)] = rnd(256);
          else if (op === 1) msg = msg.subarray(0, rnd(msg.length + 1));
          else msg = Buffer.concat([msg, Buffer.from([rnd(256), rnd(256)])]);
        }
      }
      const transport = i % 2 ? 'udp' : 'tcp';
      const r = handleQuery(msg, askers[rnd(askers.length)]!, store, transport);
      if (r.action === 'reply') {
        replies++;
        expect(() => dnsPacket.decode(r.reply)).not.toThrow();
        expect(r.reply.readUInt16BE(0)).toBe(msg.readUInt16BE(0));
        if (transport === 'udp') expect(r.reply.length).toBeLessThanOrEqual(65535);
      } else if (r.action === 'forward') forwards++;
      else drops++;
    }
    expect(replies).toBeGreaterThan(1000);
    expect(forwards + drops).toBeGreaterThan(100);
  });
});
