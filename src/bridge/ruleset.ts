// Render a state root's whole nftables table (NAT, isolation, internal networks) from its networks (pure).
import { DnsnetError } from '../errors.js';
import { formatCidr, ipVersion, isIpLiteral, parseCidr } from '../ip/index.js';
import { hasBridge, type NetworkRecord } from '../state/types.js';

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const TABLE = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/**
 * The nft script that makes `table inet <table>` exactly what `networks` need, in one transaction.
 * nft 1.0.6 has no `destroy`, so the table is first added (a no-op if it exists), then deleted,
 * then defined again: idempotent, atomic, and nothing stale survives. With no networks the
 * script only deletes the table, so the last `network rm` leaves nothing of dnsnet behind.
 *
 * forward (filter, priority filter - 1, policy accept): drops traffic between two different
 *   dnsnet bridges, and anything that enters or leaves an internal network's bridge. It runs just
 *   before other tools' filter chains (priority 0: iptables-nft, firewalld) so isolation is
 *   decided first and reads first in a trace; policy accept because it only adds drops (a drop is
 *   final in any base chain, and an accept here cannot override another table's drop anyway).
 * postrouting (nat, priority srcnat): masquerades each non-internal subnet leaving through an
 *   interface that is not a dnsnet bridge, as Docker's `-s SUBNET ! -o docker0 -j MASQUERADE`.
 */
/**
 * A published port as the kernel carries it: traffic for a local address (`hostIp`: one address, or
 * 0.0.0.0 / :: for any of that family) on `hostPort` goes to the container's address and port.
 */
export interface PortRule {
  proto: 'tcp' | 'udp' | 'sctp';
  hostIp: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
}

/** What the table is rendered from: the networks, and the ports published now. */
export interface Firewall {
  networks: NetworkRecord[];
  ports: PortRule[];
}

/**
 * Published ports (when there are any), Docker's rules without its userland proxy, in the kernel:
 * prerouting and output (nat, dstnat): traffic for a local address and a published port is DNATed to the
 *   container, from the LAN, from containers (hairpin) and from the host itself, 127.0.0.1 included
 *   (route_localnet is set on the bridges). IPv6 ::1 cannot be DNATed by the kernel: the daemon's
 *   socket on the port proxies it (ports/holder.ts), as it does IPv6 clients of an IPv4-only container.
 * postrouting: a loopback source is masqueraded (it cannot leave lo), and so is a container reaching a
 *   published port through the host (its answer must come back the same way); LAN clients keep theirs.
 * forward: DNATed traffic crosses between networks (another network's container through the host's address).
 * guard (filter, prerouting, priority raw): with route_localnet on, nothing from a bridge may be addressed
 *   to 127.0.0.0/8 (what a container could otherwise reach of the host's loopback services).
 */
export function renderTable(table: string, fw: Firewall | NetworkRecord[]): string {
  const { networks, ports } = Array.isArray(fw) ? { networks: fw, ports: [] } : fw;
  if (!TABLE.test(table)) throw new DnsnetError('internal', `invalid nftables table name "${table}"`);
  // Only bridges have kernel objects here (an overlay network's local bridge too; `host` and `none` have none).
  const bridges = networks.filter(hasBridge);
  const header = [
    `# dnsnet: table inet ${table}, rendered from ${bridges.length} network(s); replaced whole in one transaction`,
    `add table inet ${table}`,
    `delete table inet ${table}`,
  ];
  if (bridges.length === 0) return `${header.join('\n')}\n`;

  const nets = [...bridges].sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
  for (const n of nets) {
    if (!IFNAME.test(n.device)) throw new DnsnetError('internal', `network ${n.name}: invalid device name "${n.device}"`);
  }
  const forward: string[] = [];
  const nat: string[] = [];
  for (const n of nets.filter((x) => x.internal)) {
    const dev = quote(n.device);
    const label = label_(n);
    forward.push(`iifname ${dev} oifname != ${dev} drop comment ${quote(`internal network ${label}: nothing leaves`)}`);
    forward.push(`oifname ${dev} iifname != ${dev} drop comment ${quote(`internal network ${label}: nothing enters`)}`);
  }
  if (ports.length > 0) forward.push(`ct status dnat accept comment "published ports: also from another network"`);
  for (const n of nets.filter((x) => !x.internal)) {
    const dev = quote(n.device);
    const label = label_(n);
    forward.push(`iifname ${dev} oifname @bridges oifname != ${dev} drop comment ${quote(`isolate network ${label}`)}`);
    for (const c of n.ipam) {
      const subnet = parseCidr(c.subnet); // re-parsed: only a well-formed CIDR reaches the script
      const match = subnet.family === 4 ? 'ip saddr' : 'ip6 saddr';
      nat.push(`${match} ${formatCidr(subnet)} oifname != @bridges masquerade comment ${quote(`network ${label}`)}`);
    }
  }

  const body = [
    `table inet ${table} {`,
    '\tset bridges {',
    '\t\ttype ifname',
    `\t\telements = { ${nets.map((n) => quote(n.device)).join(', ')} }`,
    '\t}',
    '',
    '\tchain forward {',
    '\t\ttype filter hook forward priority filter - 1; policy accept;',
    ...forward.map((r) => `\t\t${r}`),
    '\t}',
    '',
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    ...nat.map((r) => `\t\t${r}`),
    ...(ports.length > 0
      ? [
          '\t\tip saddr 127.0.0.0/8 oifname @bridges ct status dnat masquerade comment "published ports: loopback clients"',
          // (postrouting has no input interface: a container is told by its source address)
          ...hairpin(nets),
        ]
      : []),
    '\t}',
    ...(ports.length > 0 ? publishedChains(ports) : []),
    '}',
  ];
  return `${[...header, ...body].join('\n')}\n`;
}

/** A container reaching a published port through the host: masqueraded, so that the answer comes back the same way. */
function hairpin(nets: NetworkRecord[]): string[] {
  const rules: string[] = [];
  for (const family of [4, 6] as const) {
    const subnets = nets.flatMap((n) => n.ipam.map((c) => parseCidr(c.subnet))).filter((c) => c.family === family);
    if (subnets.length === 0) continue;
    const match = family === 4 ? 'ip saddr' : 'ip6 saddr';
    rules.push(`\t\t${match} { ${subnets.map(formatCidr).join(', ')} } oifname @bridges ct status dnat masquerade comment "published ports: hairpin"`);
  }
  return rules;
}

function publishedChains(ports: PortRule[]): string[] {
  const rules: string[] = [];
  const sorted = [...ports].sort((a, b) => a.hostPort - b.hostPort || a.proto.localeCompare(b.proto) || a.hostIp.localeCompare(b.hostIp));
  for (const p of sorted) {
    const host = parseIp(p.hostIp, 'published host address');
    const ctr = parseIp(p.containerIp, 'container address');
    if (host.family !== ctr.family || host.text === '::1') continue; // the proxy's (see above)
    const match = p.hostIp === '0.0.0.0' ? 'meta nfproto ipv4' : p.hostIp === '::' ? 'meta nfproto ipv6 ip6 daddr != ::1' : `${host.family === 4 ? 'ip' : 'ip6'} daddr ${host.text}`;
    const to = host.family === 4 ? `dnat ip to ${ctr.text}:${p.containerPort}` : `dnat ip6 to [${ctr.text}]:${p.containerPort}`;
    rules.push(`${match} meta l4proto ${p.proto} th dport ${port(p.hostPort)} ${to}`);
  }
  return [
    '',
    '\tchain published {',
    ...rules.map((r) => `\t\t${r}`),
    '\t}',
    '',
    '\tchain prerouting {',
    '\t\ttype nat hook prerouting priority dstnat; policy accept;',
    '\t\tfib daddr type local jump published',
    '\t}',
    '',
    '\tchain output {',
    '\t\ttype nat hook output priority -100; policy accept;',
    '\t\tfib daddr type local jump published',
    '\t}',
    '',
    '\tchain guard {',
    '\t\ttype filter hook prerouting priority raw; policy accept;',
    '\t\tiifname @bridges ip daddr 127.0.0.0/8 drop comment "route_localnet: nothing from a container to the host\'s loopback"',
    '\t}',
  ];
}

function parseIp(text: string, what: string): { family: 4 | 6; text: string } {
  if (!isIpLiteral(text)) throw new DnsnetError('internal', `invalid ${what} "${text}"`);
  return { family: ipVersion(text) === 6 ? 6 : 4, text };
}

function port(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new DnsnetError('internal', `invalid port ${n}`);
  return n;
}

/** The network as named in rule comments: its name, or its device when the name is not plain. */
function label_(n: NetworkRecord): string {
  const name = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(n.name) ? n.name : n.device;
  return name.length > 80 ? `${name.slice(0, 80)}...` : name;
}

function quote(text: string): string {
  return `"${text.replace(/[^A-Za-z0-9_.:/ -]/g, '_')}"`;
}
