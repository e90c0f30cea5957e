// The record store under aardvark-dns's rules (style 'podman', TTL 0) and the network askers a shared listener uses.
import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import { RecordStore, networkAsker, reverseName } from '../../src/resolver/records.js';
import { handleQuery } from '../../src/resolver/handler.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

function store(): RecordStore {
  const s = new RecordStore({ ttl: 0, style: 'podman' });
  s.upsert({ id: A, name: 'aone', hostname: '', links: [], endpoints: [{ network: 'p1/podman1', ipv4: '10.1.0.2', aliases: ['a1', '1a'] }] });
  s.upsert({ id: B, name: 'bone', hostname: 'ignored', links: [], endpoints: [{ network: 'p1/podman2', ipv4: '10.2.0.2', aliases: [] }] });
  return s;
}

describe("RecordStore, aardvark-dns's names", () => {
  const s = store();
  it.each([
    ['name', A, 'aone', ['10.1.0.2']],
    ['alias', A, '1a', ['10.1.0.2']],
    ['name.dns.podman', A, 'a1.dns.podman', ['10.1.0.2']],
    ['no short ID (Podman lists it as an alias when it wants it)', A, A.slice(0, 12), undefined],
    ['no hostname', B, 'ignored', undefined],
    ['no name.network', A, 'aone.p1/podman1', undefined],
    ['another network', A, 'bone', undefined],
    ["a network asker sees that network's names", networkAsker('p1/podman2'), 'bone', ['10.2.0.2']],
    ['and not the others', networkAsker('p1/podman2'), 'aone', undefined],
    ['an unknown network asker sees nothing', networkAsker('p1/none'), 'aone', undefined],
  ])('%s', (_, asker, name, v4) => {
    expect(s.lookup(asker, name)?.ipv4).toEqual(v4);
  });

  it('answers A with TTL 0, and PTR with every name, TTL 0', () => {
    const q = (name: string, type: 'A' | 'PTR') => dnsPacket.encode({ type: 'query', id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }] });
    const a = handleQuery(q('aone', 'A'), A, s, 'udp');
    expect(a.action).toBe('reply');
    const ar = dnsPacket.decode((a as { reply: Buffer }).reply);
    expect(ar.answers).toEqual([expect.objectContaining({ name: 'aone', type: 'A', ttl: 0, data: '10.1.0.2' })]);
    const p = handleQuery(q(reverseName('10.1.0.2')!, 'PTR'), networkAsker('p1/podman1'), s, 'udp');
    const pr = dnsPacket.decode((p as { reply: Buffer }).reply);
    expect(pr.answers!.map((r) => [r.type, (r as { ttl: number }).ttl, (r as { data: string }).data]).sort()).toEqual([
      ['PTR', 0, '1a'],
      ['PTR', 0, 'a1'],
      ['PTR', 0, 'aone'],
    ]);
  });
});
