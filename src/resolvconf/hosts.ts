// Render a container's /etc/hosts and /etc/hostname (SPEC 3).

export interface HostsInput {
  loIPv6: boolean; // the container's `lo` has IPv6
  extraHosts: { name: string; ip: string }[]; // --add-host, in flag order, host-gateway resolved
  own: { ip: string }[]; // the container's addresses, in endpoint order
  hostname: string;
  links: { ip: string; alias: string; hostname: string; name: string }[]; // default network only
}

const LOCALHOST = ['127.0.0.1\tlocalhost'];
const LOCALHOST6 = [
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::\tip6-localnet',
  'ff00::\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
];

export function renderHosts(input: HostsInput): string {
  const lines = [...LOCALHOST, ...(input.loIPv6 ? LOCALHOST6 : [])];
  for (const h of input.extraHosts) lines.push(`${h.ip}\t${h.name}`);
  const names = ownNames(input.hostname);
  for (const a of input.own) lines.push(`${a.ip}\t${names}`);
  // Docker's order: the alias, the linked container's hostname, then its name unless it is the alias.
  for (const l of input.links) {
    const names = l.name === l.alias ? [l.alias, l.hostname] : [l.alias, l.hostname, l.name];
    lines.push(`${l.ip}\t${names.join(' ')}`);
  }
  return lines.join('\n') + '\n';
}

/** `a.b` answers to `a.b` and `a`. */
function ownNames(hostname: string): string {
  const dot = hostname.indexOf('.');
  return dot > 0 ? `${hostname} ${hostname.slice(0, dot)}` : hostname;
}

export function renderHostname(hostname: string): string {
  return hostname + '\n';
}
