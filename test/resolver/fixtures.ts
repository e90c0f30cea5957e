// Shared resolver test data: a small set of containers on two networks, and dns-packet helpers.
import { createHash } from 'node:crypto';
import dnsPacket, { type Packet } from 'dns-packet';
import { RecordStore, type ResolverContainer } from '../../src/resolver/records.js';

export function hexId(seed: string): string {
  return createHash('sha256').update(seed).digest('hex');
}

export const WEB = hexId('web');
export const DB = hexId('db');
export const CLIENT = hexId('client');
export const LINKER = hexId('linker');
export const SECRET = hexId('secret');
export const BRIDGE2 = hexId('bridge2'); // on app and other
export const LONER = hexId('loner'); // registered with no networks

export function containers(): ResolverContainer[] {
  const list: ResolverContainer[] = [
    { id: WEB, name: 'web', hostname: 'webhost', endpoints: [{ network: 'app', ipv4: '10.1.0.2', ipv6: 'fd00:1::2', aliases: ['www', 'Front'] }], links: [] },
    { id: DB, name: 'db', hostname: DB.slice(0, 12), endpoints: [{ network: 'app', ipv4: '10.1.0.3', aliases: ['store'] }], links: [] },
    { id: CLIENT, name: 'client', hostname: 'client', endpoints: [{ network: 'app', ipv4: '10.1.0.4', aliases: [] }], links: [] },
    { id: LINKER, name: 'linker', hostname: 'linker', endpoints: [{ network: 'app', ipv4: '10.1.0.5', aliases: [] }], links: [{ alias: 'database', target: 'db' }] },
    { id: SECRET, name: 'secret', hostname: 'secret', endpoints: [{ network: 'other', ipv4: '10.2.0.5', aliases: ['shared'] }], links: [] },
    {
      id: BRIDGE2,
      name: 'bridge2',
      hostname: 'bridge2',
      endpoints: [
        { network: 'app', ipv4: '10.1.0.6', aliases: ['shared'] },
        { network: 'other', ipv4: '10.2.0.6', aliases: [] },
      ],
      links: [],
    },
    { id: LONER, name: 'loner', hostname: 'loner', endpoints: [], links: [] },
  ];
  // 60 containers answering to "big": more A records than fit 512 bytes.
  for (let i = 0; i < 60; i++) {
    list.push({ id: hexId(`big${i}`), name: `big${i}`, hostname: `big${i}`, endpoints: [{ network: 'app', ipv4: `10.1.1.${i + 1}`, aliases: ['big'] }], links: [] });
  }
  return list;
}

export function makeStore(): RecordStore {
  const store = new RecordStore();
  for (const c of containers()) store.upsert(c);
  return store;
}

export function query(name: string, type: string, opts: { id?: number; edns?: number; ednsVersion?: number; flags?: number; dnssecOk?: boolean } = {}): Buffer {
  const packet: Packet = {
    type: 'query',
    id: opts.id ?? 4242,
    flags: opts.flags ?? dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as 'A', class: 'IN' }],
  };
  if (opts.edns !== undefined) {
    packet.additionals = [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, extendedRcode: 0, ednsVersion: opts.ednsVersion ?? 0, flags: opts.dnssecOk ? dnsPacket.DNSSEC_OK : 0, options: [] } as never];
  }
  return dnsPacket.encode(packet);
}
