// Render a state root's whole nftables table (NAT, isolation, internal networks) from its networks (pure).
import { DnsnetError } from '../errors.js';
import { formatCidr, parseCidr } from '../ip/index.js';
import type { NetworkRecord } from '../state/types.js';

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
export function renderTable(table: string, networks: NetworkRecord[]): string {
  if (!TABLE.test(table)) throw new DnsnetError('internal', `invalid nftables table name "${table}"`);
  const header = [
    `# dnsnet: table inet ${table}, rendered from ${networks.length} network(s); replaced whole in one transaction`,
    `add table inet ${table}`,
    `delete table inet ${table}`,
  ];
  if (networks.length === 0) return `${header.join('\n')}\n`;

  const nets = [...networks].sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
  for (const n of nets) {
    if (!IFNAME.test(n.device)) throw new DnsnetError('internal', `network ${n.name}: invalid device name "${n.device}"`);
  }
  const forward: string[] = [];
  const nat: string[] = [];
  for (const n of nets) {
    const dev = quote(n.device);
    const label = label_(n);
    if (n.internal) {
      forward.push(`iifname ${dev} oifname != ${dev} drop comment ${quote(`internal network ${label}: nothing leaves`)}`);
      forward.push(`oifname ${dev} iifname != ${dev} drop comment ${quote(`internal network ${label}: nothing enters`)}`);
      continue;
    }
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
    '\t}',
    '}',
  ];
  return `${[...header, ...body].join('\n')}\n`;
}

/** The network as named in rule comments: its name, or its device when the name is not plain. */
function label_(n: NetworkRecord): string {
  const name = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(n.name) ? n.name : n.device;
  return name.length > 80 ? `${name.slice(0, 80)}...` : name;
}

function quote(text: string): string {
  return `"${text.replace(/[^A-Za-z0-9_.:/ -]/g, '_')}"`;
}
