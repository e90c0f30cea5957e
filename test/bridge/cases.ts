// Network records shared by the ruleset golden tests and the integration test's nft -c check.
import type { NetworkRecord } from '../../src/state/types.js';
import type { Firewall } from '../../src/bridge/index.js';

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

/** case name (= golden file name) -> networks (and published ports) */
export const RULESET_CASES: [string, NetworkRecord[] | Firewall][] = [
  ['zero-networks', []],
  ['one-network', [APP]],
  ['two-networks', [DB, APP]], // given out of order: the output is sorted by device
  ['internal-network', [APP, SECRET]],
  ['ipv6-network', [V6]],
  [
    'published-ports',
    {
      networks: [APP, V6, SECRET],
      ports: [
        { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerIp: '172.18.0.2', containerPort: 80 },
        { proto: 'tcp', hostIp: '::', hostPort: 8080, containerIp: 'fd3c:1b2a:9e00::2', containerPort: 80 },
        { proto: 'udp', hostIp: '127.0.0.1', hostPort: 5353, containerIp: '172.18.0.2', containerPort: 53 },
        { proto: 'sctp', hostIp: '192.0.2.10', hostPort: 9000, containerIp: '172.20.0.2', containerPort: 9 },
        { proto: 'tcp', hostIp: '::1', hostPort: 8081, containerIp: 'fd3c:1b2a:9e00::2', containerPort: 81 }, // the proxy's: no rule
        { proto: 'tcp', hostIp: '::', hostPort: 8082, containerIp: '172.18.0.2', containerPort: 82 }, // IPv6 to an IPv4 container: the proxy's
      ],
    },
  ],
];
