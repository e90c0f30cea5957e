// Pure renderers of API values for the terminal: Docker-like tables, JSON, IDs, and status/age phrases.
import type { ContainerJson, ImageSummaryJson, InfoJson, NetworkJson, PodmanDirJson, PortBindingJson, PullJson } from '../api/types.js';
import { DOCKER_HUB, familiarName, parseImageRef } from '../images/reference.js';

/**
 * Columns as Docker's tabwriter lays them out (minwidth 10, padding 3): each cell but the last is
 * padded to max(width + 3, 10), so the headers line up the way Docker users read them.
 */
export function formatTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(10, ...all.map((r) => (r[i] ?? '').length + 3)));
  return all.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('').trimEnd() + '\n').join('');
}

/** `inspect` output: always an array, as Docker prints it. */
export function formatJsonArray(values: unknown[]): string {
  return JSON.stringify(values, null, 2) + '\n';
}

export function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** `ls --format json`: one object per line, as Docker does, so `| jq .Name` works unchanged. */
export function formatJsonLines(values: unknown[]): string {
  return values.map((v) => JSON.stringify(v) + '\n').join('');
}

export function shortId(id: string): string {
  return id.slice(0, 12);
}

export function formatIds(ids: string[]): string {
  return ids.map((id) => shortId(id) + '\n').join('');
}

/** Docker sorts `network ls` by name. */
export function sortNetworks(networks: NetworkJson[]): NetworkJson[] {
  return [...networks].sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
}

/** Docker lists the newest container first. */
export function sortContainers(containers: ContainerJson[]): ContainerJson[] {
  return [...containers].sort((a, b) => Date.parse(b.Created) - Date.parse(a.Created));
}

export function formatNetworkTable(networks: NetworkJson[]): string {
  return formatTable(
    ['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'],
    networks.map((n) => [shortId(n.Id), n.Name, n.Driver, n.Scope]),
  );
}

export function formatContainerTable(containers: ContainerJson[], now: number = Date.now()): string {
  return formatTable(
    ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
    // IMAGE: the reference it was run with; a host command (no image) shows "-".
    containers.map((c) => [shortId(c.Id), c.Config.Image ?? '-', formatCommand(c), formatCreated(c.Created, now), formatStatus(c.State, now), formatPorts(c.NetworkSettings.Ports ?? {}), c.Name.replace(/^\//, '')]),
  );
}

/** `IP:PORT` as Docker prints a host address (IPv6 in brackets). */
export function hostAddress(ip: string, port: string): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

interface PortRow {
  proto: string;
  cport: number;
  hostIp?: string;
  hport?: number;
}

function portRows(ports: Record<string, PortBindingJson[] | null>, byPort = false): PortRow[] {
  const rows: PortRow[] = [];
  for (const [key, bindings] of Object.entries(ports)) {
    const [port, proto = 'tcp'] = key.split('/');
    if (!bindings || bindings.length === 0) rows.push({ proto, cport: Number(port) });
    else for (const b of bindings) rows.push({ proto, cport: Number(port), hostIp: b.HostIp, hport: Number(b.HostPort) });
  }
  // PORTS: IPv4 before IPv6, then by protocol and port, so that consecutive ports fold into ranges.
  // `port`: by container port, then IPv4 before IPv6.
  const fam = (r: PortRow) => (r.hostIp === undefined ? 0 : r.hostIp.includes(':') ? 2 : 1);
  const byAddress = (a: PortRow, b: PortRow) => fam(a) - fam(b) || (a.hostIp ?? '').localeCompare(b.hostIp ?? '');
  const byNumber = (a: PortRow, b: PortRow) => a.proto.localeCompare(b.proto) || a.cport - b.cport;
  return rows.sort((a, b) => (byPort ? a.cport - b.cport || byNumber(a, b) || byAddress(a, b) : byAddress(a, b) || byNumber(a, b)));
}

/** Docker's PORTS column: `0.0.0.0:8000-8002->80-82/tcp, [::]:8080->80/tcp, 443/tcp` (consecutive ports folded). */
export function formatPorts(ports: Record<string, PortBindingJson[] | null>): string {
  const groups: { first: PortRow; last: PortRow }[] = [];
  for (const r of portRows(ports)) {
    const g = groups.at(-1);
    const next = g && g.last.proto === r.proto && g.last.hostIp === r.hostIp && r.cport === g.last.cport + 1 && (r.hport === undefined ? g.last.hport === undefined : r.hport === (g.last.hport ?? NaN) + 1);
    if (g && next) g.last = r;
    else groups.push({ first: r, last: r });
  }
  const range = (a: number, b: number) => (a === b ? String(a) : `${a}-${b}`);
  return groups
    .map(({ first, last }) => {
      const cports = `${range(first.cport, last.cport)}/${first.proto}`;
      return first.hostIp === undefined ? cports : `${hostAddress(first.hostIp, range(first.hport ?? 0, last.hport ?? 0))}->${cports}`;
    })
    .join(', ');
}

/** `dnsnet port`: `80/tcp -> 0.0.0.0:8080` per binding; with a port given, only the addresses. */
export function formatPortLines(ports: Record<string, PortBindingJson[] | null>, only?: string): string {
  return portRows(ports, true)
    .filter((r) => r.hostIp !== undefined && (only === undefined || `${r.cport}/${r.proto}` === only))
    .map((r) => (only === undefined ? `${r.cport}/${r.proto} -> ` : '') + hostAddress(r.hostIp ?? '', String(r.hport)) + '\n')
    .join('');
}

/** Docker's COMMAND column: quoted, cut to 20 characters with an ellipsis. */
export function formatCommand(c: Pick<ContainerJson, 'Path' | 'Args'>): string {
  const command = [c.Path, ...c.Args].join(' ');
  const chars = [...command];
  return `"${chars.length > 20 ? chars.slice(0, 19).join('') + '…' : command}"`;
}

export function formatCreated(created: string, now: number = Date.now()): string {
  const at = parseTime(created);
  return at === undefined ? '' : `${humanDuration(now - at)} ago`;
}

/** Docker's STATUS column: "Up 3 seconds", "Exited (137) 5 minutes ago", "Created". */
export function formatStatus(state: Pick<ContainerJson['State'], 'Status' | 'Running' | 'ExitCode' | 'StartedAt' | 'FinishedAt'>, now: number = Date.now()): string {
  if (state.Running) {
    const started = parseTime(state.StartedAt);
    return started === undefined ? 'Up' : `Up ${humanDuration(now - started)}`;
  }
  switch (state.Status) {
    case 'created':
      return 'Created';
    case 'exited': {
      const finished = parseTime(state.FinishedAt);
      const exited = `Exited (${state.ExitCode})`;
      return finished === undefined ? exited : `${exited} ${humanDuration(now - finished)} ago`;
    }
    case 'removing':
      return 'Removal In Progress';
    case 'dead':
      return 'Dead';
    default:
      return capitalize(state.Status);
  }
}

/** go-units HumanDuration, which Docker uses for every age it prints. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

/** `stats` as a two-column table, nested counters flattened to dotted names. */
/**
 * `dnsnet stats`: the daemon's /metrics (Prometheus text), one row per sample; histograms as their count and
 * sum (the buckets are for a monitoring system).
 */
export function formatStatsTable(metricsText: string): string {
  const rows: string[][] = [];
  for (const line of metricsText.split('\n')) {
    if (line === '' || line.startsWith('#') || /_bucket[{ ]/.test(line)) continue;
    const cut = line.lastIndexOf(' ');
    rows.push([line.slice(0, cut), line.slice(cut + 1)]);
  }
  return formatTable(['METRIC', 'VALUE'], rows);
}

const upFor = (seconds: number): string => {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : '', `${seconds % 60}s`].filter(Boolean).join(' ');
};

/** `dnsnet system info`, laid out as `docker info` lays out its server part. */
export function formatInfo(i: InfoJson): string {
  const drivers = Object.entries(i.Networks.ByDriver)
    .sort()
    .map(([d, n]) => `${d} ${n}`)
    .join(', ');
  const lines = [
    'Server:',
    ` Version: ${i.Version} (Node.js ${i.NodeVersion})`,
    ` Daemon: pid ${i.DaemonPid}, up ${upFor(i.UptimeSeconds)} (since ${i.DaemonStarted})`,
    ` State root: ${i.StateRoot}`,
    ` Run root: ${i.RunRoot}`,
    ` Socket: ${i.Socket}`,
    ` Containers: ${i.Containers.Total}`,
    `  Running: ${i.Containers.Running}`,
    `  Created: ${i.Containers.Created}`,
    `  Exited: ${i.Containers.Exited}`,
    ` Networks: ${i.Networks.Total}${drivers ? ` (${drivers})` : ''}`,
    ` Images: ${i.Images}`,
    ` Resolver: 127.0.0.11:53 in each container, UDP path ${i.ResolverUdpPath}`,
    ` Host resolv.conf: ${i.HostResolvConf.Path}`,
    `  Nameservers: ${i.HostResolvConf.Nameservers.join(', ') || '(none)'}`,
    `  Upstreams now: ${i.HostResolvConf.Upstreams.join(', ') || '(none)'}`,
    ` Cluster: ${i.Cluster ? `${i.Cluster.Store.join(', ')}, advertise ${i.Cluster.Advertise}, ${i.Cluster.State} (lease ${i.Cluster.LeaseTTLSeconds} s)` : 'none'}`,
    ` Metrics: ${i.MetricsAddr ? `http://${i.MetricsAddr}/metrics, and GET /metrics on the socket` : 'GET /metrics on the socket'}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** `system podman ls`: one row per network of each directory served (an empty directory: one row, no network). */
export function formatPodmanTable(dirs: PodmanDirJson[]): string {
  const rows: string[][] = [];
  for (const d of dirs) {
    const nets = d.networks.length > 0 ? d.networks : [undefined];
    for (const n of nets) {
      rows.push([d.dir, String(d.port), String(d.pid), n ? `${n.name}${n.internal ? ' (internal)' : ''}` : '-', n ? n.listen.join(',') : '-', n ? String(n.containers) : '0']);
    }
  }
  return formatTable(['DIRECTORY', 'PORT', 'PID', 'NETWORK', 'LISTEN', 'CONTAINERS'], rows);
}

/** Unset times (absent, unparsable, or Go's zero time 0001-01-01) read as unknown. */
function parseTime(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) || at <= 0 ? undefined : at;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** go-units HumanSizeWithPrecision(size, 3), which `docker images` uses: decimal units, 3 significant digits. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < units.length - 1) {
    size /= 1000;
    i++;
  }
  return `${Number(size.toPrecision(3))}${units[i]}`;
}

/** `docker images`: a row per tag (an untagged image: <none> <none>), newest first. */
export function formatImageTable(images: ImageSummaryJson[], now: number = Date.now()): string {
  const rows: string[][] = [];
  for (const img of [...images].sort((a, b) => b.Created - a.Created)) {
    const id = img.Id.replace(/^sha256:/, '').slice(0, 12);
    const created = `${humanDuration(now - img.Created * 1000)} ago`;
    const tags = img.RepoTags.length > 0 ? img.RepoTags : ['<none>:<none>'];
    for (const t of tags) {
      const colon = t.lastIndexOf(':');
      rows.push([t.slice(0, colon), t.slice(colon + 1), id, created, humanSize(img.Size)]);
    }
  }
  return formatTable(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], rows);
}

/** `docker pull`'s first lines: the default tag when none was given, then what is pulled from where. */
export function pullHeader(raw: string): string {
  const ref = parseImageRef(raw);
  const name = familiarName(ref);
  const lines = [];
  if (!/[@:][^/]*$/.test(raw)) lines.push('Using default tag: latest');
  lines.push(`${ref.digest ?? ref.tag ?? 'latest'}: Pulling from ${ref.domain === DOCKER_HUB ? ref.path : name}`);
  return lines.join('\n') + '\n';
}

/** `docker pull`'s last lines. */
export function pullFooter(r: PullJson): string {
  const status = r.fetched > 0 ? `Status: Downloaded newer image for ${r.ref}` : `Status: Image is up to date for ${r.ref}`;
  return [`Digest: ${r.digest}`, status, r.ref].join('\n') + '\n';
}

/** One step of a pull: `abc123: Pull complete`; a download as a bar (for a terminal, rewritten in place). */
export function pullStep(ev: { id?: string; status?: string; current?: number; total?: number }): string {
  const id = ev.id ? `${ev.id}: ` : '';
  if (ev.status !== 'Downloading' || !ev.total) return `${id}${ev.status ?? ''}`;
  const width = 40;
  const done = Math.min(width, Math.round(((ev.current ?? 0) / ev.total) * width));
  const bar = `[${'='.repeat(Math.max(0, done - 1))}${done > 0 ? '>' : ''}${' '.repeat(width - done)}]`;
  return `${id}Downloading ${bar} ${humanSize(ev.current ?? 0)}/${humanSize(ev.total)}`;
}
