// Network records shared by the ruleset golden tests and the integration test's nft -c check.
import type { NetworkRecord } from '../../src/state/types.js';

export function network(over: Partial<NetworkRecord> & { id: string; name: string }): NetworkRecord {
  return {
    schema: 1,
    created: '2024-01-01T00:00:00.000Z',
    driver: 'bridge',
    isDefault: false,
    internal: false,
    enableIPv6: false,
    mtu: 1500,
    device: `dn-${over.id.slice(0, 12)}`,
    ipam: [],
    options: {},
    ...over,
  };
}

const APP = network({ id: 'a'.repeat(64), name: 'app', ipam: [{ subnet: '172.18.0.0/16', gateway: '172.18.0.1' }] });
const DB = network({ id: 'b'.repeat(64), name: 'db', ipam: [{ subnet: '192.168.16.0/20', gateway: '192.168.16.1', ipRange: '192.168.17.0/24' }] });
const SECRET = network({ id: 'c'.repeat(64), name: 'secret', internal: true, ipam: [{ subnet: '172.19.0.0/16', gateway: '172.19.0.1' }] });
const V6 = network({
  id: 'd'.repeat(64),
  name: 'dual',
  enableIPv6: true,
  ipam: [
    { subnet: '172.20.0.0/16', gateway: '172.20.0.1' },
    { subnet: 'fd3c:1b2a:9e00::/64', gateway: 'fd3c:1b2a:9e00::1' },
  ],
});

/** case name (= golden file name) -> networks */
export const RULESET_CASES: [string, NetworkRecord[]][] = [
  ['zero-networks', []],
  ['one-network', [APP]],
  ['two-networks', [DB, APP]], // given out of order: the output is sorted by device
  ['internal-network', [APP, SECRET]],
  ['ipv6-network', [V6]],
];
