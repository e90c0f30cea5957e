// renderTable: golden nft scripts per case, plus the properties that matter (pure, no root).
import { describe, expect, it } from 'vitest';
import { DnsnetError } from '../../src/errors.js';
import { bridgeName, renderTable, tableName } from '../../src/bridge/index.js';
import type { NetworkRecord } from '../../src/state/types.js';
import { RULESET_CASES, network } from './cases.js';

describe('renderTable', () => {
  it.each(RULESET_CASES)('%s', async (name, networks) => {
    await expect(renderTable('dnsnet', networks)).toMatchFileSnapshot(`../../fixtures/bridge/${name}.nft`);
  });

  it('is a pure function of the set of networks (order does not matter)', () => {
    const nets = RULESET_CASES.find(([n]) => n === 'two-networks')![1] as NetworkRecord[];
    expect(renderTable('dnsnet', [...nets].reverse())).toBe(renderTable('dnsnet', nets));
  });

  it('always replaces the whole table: add, delete, then define', () => {
    for (const [, nets] of RULESET_CASES) {
      const lines = renderTable('dnsnet_t1234', nets).split('\n');
      expect(lines[1]).toBe('add table inet dnsnet_t1234');
      expect(lines[2]).toBe('delete table inet dnsnet_t1234');
    }
  });

  it('an internal network gets no masquerade', () => {
    const script = renderTable('dnsnet', RULESET_CASES.find(([n]) => n === 'internal-network')![1]);
    expect(script).not.toContain('172.19.0.0/16');
    expect(script).toContain('ip saddr 172.18.0.0/16 oifname != @bridges masquerade');
  });

  it.each([
    ['a bad table name', 'dnsnet; flush ruleset', [network({ id: 'e'.repeat(64), name: 'x', ipam: [{ subnet: '10.213.0.0/24', gateway: '10.213.0.1' }] })]],
    ['a bad device name', 'dnsnet', [network({ id: 'e'.repeat(64), name: 'x', device: 'dn-"x', ipam: [] })]],
    ['a bad subnet', 'dnsnet', [network({ id: 'e'.repeat(64), name: 'x', ipam: [{ subnet: '10.213.0.0/24 accept', gateway: '10.213.0.1' }] })]],
  ])('refuses %s rather than render it', (_case, table, nets) => {
    expect(() => renderTable(table, nets)).toThrow(DnsnetError);
  });
});

describe('names', () => {
  it('bridgeName is dn- and 12 hex, 15 characters', () => {
    expect(bridgeName('3f2a9c1b7e44'.padEnd(64, '0'))).toBe('dn-3f2a9c1b7e44');
    expect(bridgeName('f'.repeat(64))).toHaveLength(15);
  });

  it('tableName: dnsnet for the default root, a per-root hash otherwise', () => {
    expect(tableName('/var/lib/dnsnet')).toBe('dnsnet');
    const a = tableName('/tmp/root-a');
    expect(a).toMatch(/^dnsnet_[0-9a-f]{8}$/);
    expect(tableName('/tmp/root-a')).toBe(a);
    expect(tableName('/tmp/root-b')).not.toBe(a);
  });
});
