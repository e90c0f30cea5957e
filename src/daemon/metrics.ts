// `GET /metrics` (issue 19): the daemon's numbers in Prometheus's text exposition format (0.0.4), names
// `dnsnet_<module>_<thing>_<unit>`, each with HELP and TYPE. Pure: a snapshot in, text out (tested against
// `promtool check metrics`). `dnsnet stats` reads the same counters through /stats.
import type { ResolverMetrics } from '../resolver/metrics.js';
import { answerCounts, type Histogram } from '../resolver/metrics.js';
import type { ResolverStats } from '../resolver/index.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricsSnapshot {
  version: string;
  nodeVersion: string;
  startedAt: Date;
  containers: Record<'running' | 'created' | 'exited', number>;
  networks: Record<string, number>;
  resolver: ResolverStats;
  resolverDetail: ResolverMetrics;
  reloads: { count: number; seconds: number[] };
  cluster?: { state: string };
}

const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labels = (l: Record<string, string>): string => {
  const keys = Object.keys(l);
  return keys.length === 0 ? '' : `{${keys.map((k) => `${k}="${esc(l[k]!)}"`).join(',')}}`;
};
const num = (n: number): string => (Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN');

class Writer {
  readonly lines: string[] = [];

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): this {
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, l: Record<string, string>, value: number): this {
    this.lines.push(`${name}${labels(l)} ${num(value)}`);
    return this;
  }

  histogram(name: string, l: Record<string, string>, h: Pick<Histogram, 'bounds' | 'sum' | 'count'> & { cumulative(): number[] }): this {
    const cum = h.cumulative();
    h.bounds.forEach((b, i) => this.sample(`${name}_bucket`, { ...l, le: String(b) }, cum[i]!));
    this.sample(`${name}_bucket`, { ...l, le: '+Inf' }, h.count);
    this.sample(`${name}_sum`, l, h.sum);
    return this.sample(`${name}_count`, l, h.count);
  }
}

/** Reload times as a histogram (seconds). */
function reloadHistogram(seconds: number[]): { bounds: number[]; sum: number; count: number; cumulative(): number[] } {
  const bounds = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
  return {
    bounds,
    sum: seconds.reduce((a, b) => a + b, 0),
    count: seconds.length,
    cumulative: () => bounds.map((b) => seconds.filter((s) => s <= b).length),
  };
}

export function renderMetrics(s: MetricsSnapshot): string {
  const w = new Writer();
  w.family('dnsnet_build_info', 'gauge', 'dnsnet version and the Node.js it runs on (always 1).').sample('dnsnet_build_info', { version: s.version, node: s.nodeVersion }, 1);
  w.family('dnsnet_daemon_start_time_seconds', 'gauge', 'When the daemon started, Unix time.').sample('dnsnet_daemon_start_time_seconds', {}, s.startedAt.getTime() / 1000);
  w.family('dnsnet_containers', 'gauge', 'Containers of this state root by state.');
  for (const state of ['running', 'created', 'exited'] as const) w.sample('dnsnet_containers', { state }, s.containers[state]);
  w.family('dnsnet_networks', 'gauge', 'Networks of this state root by driver.');
  for (const [driver, n] of Object.entries(s.networks).sort()) w.sample('dnsnet_networks', { driver }, n);

  const r = s.resolver;
  const d = s.resolverDetail;
  const nets = Object.keys(d.perNetwork).sort();
  w.family('dnsnet_resolver_received_total', 'counter', 'DNS messages received by the embedded resolver (UDP datagrams and TCP messages).').sample('dnsnet_resolver_received_total', {}, r.queries);
  w.family('dnsnet_resolver_queries_total', 'counter', 'Queries answered, by the network of the asking container, query type and response code.');
  for (const net of nets) for (const a of answerCounts(d.perNetwork[net]!)) w.sample('dnsnet_resolver_queries_total', { network: net, type: a.type, rcode: a.rcode }, a.count);
  w.family('dnsnet_resolver_local_total', 'counter', 'Queries answered by the resolver itself (names, PTR, NODATA, errors), by network.');
  for (const net of nets) w.sample('dnsnet_resolver_local_total', { network: net }, d.perNetwork[net]!.local);
  w.family('dnsnet_resolver_forwarded_total', 'counter', 'Queries forwarded to an upstream, by network.');
  for (const net of nets) w.sample('dnsnet_resolver_forwarded_total', { network: net }, d.perNetwork[net]!.forwarded);
  w.family('dnsnet_resolver_truncated_total', 'counter', 'Local answers cut to fit a UDP reply (TC set), by network.');
  for (const net of nets) w.sample('dnsnet_resolver_truncated_total', { network: net }, d.perNetwork[net]!.truncated);
  w.family('dnsnet_resolver_upstream_failures_total', 'counter', 'Failed upstream attempts, by upstream and reason (timeout, servfail, refused, error).');
  for (const u of Object.keys(d.upstreamFailures).sort()) {
    for (const [reason, n] of Object.entries(d.upstreamFailures[u]!).sort()) w.sample('dnsnet_resolver_upstream_failures_total', { upstream: u, reason }, n);
  }
  w.family('dnsnet_resolver_dropped_total', 'counter', 'Queries dropped or refused service (malformed, over the in-flight limits, handler errors).').sample('dnsnet_resolver_dropped_total', {}, r.dropped);
  w.family('dnsnet_resolver_network_dropped_total', 'counter', 'Queries dropped or refused service, by network of the asking container.');
  for (const net of nets) w.sample('dnsnet_resolver_network_dropped_total', { network: net }, d.perNetwork[net]!.dropped);
  w.family('dnsnet_resolver_queued_total', 'counter', 'Forwarded queries that waited for an in-flight slot.').sample('dnsnet_resolver_queued_total', {}, r.queued);
  w.family('dnsnet_resolver_merged_total', 'counter', "Forwarded queries answered by an identical query's reply.").sample('dnsnet_resolver_merged_total', {}, r.merged);
  w.family('dnsnet_resolver_tcp_connections_total', 'counter', 'TCP connections accepted by the resolver.').sample('dnsnet_resolver_tcp_connections_total', {}, d.tcpConnections);
  w.family('dnsnet_resolver_network_tcp_connections_total', 'counter', 'TCP connections accepted on containers\' resolver sockets, by network of the container.');
  for (const net of nets) w.sample('dnsnet_resolver_network_tcp_connections_total', { network: net }, d.perNetwork[net]!.tcp);
  w.family('dnsnet_resolver_answer_duration_seconds', 'histogram', 'Time from a query received to its answer sent, local answers and forwarded ones; sampled: one answer in 16 is timed.');
  w.histogram('dnsnet_resolver_answer_duration_seconds', { source: 'local' }, d.local);
  w.histogram('dnsnet_resolver_answer_duration_seconds', { source: 'forwarded' }, d.forwarded);

  w.family('dnsnet_resolvconf_reloads_total', 'counter', "Hot reloads after the host's resolv.conf changed.").sample('dnsnet_resolvconf_reloads_total', {}, s.reloads.count);
  w.family('dnsnet_resolvconf_reload_duration_seconds', 'histogram', 'Time a hot reload took, every running container rewritten (the last 1000).');
  w.histogram('dnsnet_resolvconf_reload_duration_seconds', {}, reloadHistogram(s.reloads.seconds));
  if (s.cluster) {
    w.family('dnsnet_cluster_joined', 'gauge', "1 while this host holds its lease in the cluster's store, else 0.").sample('dnsnet_cluster_joined', {}, s.cluster.state === 'joined' ? 1 : 0);
  }
  return `${w.lines.join('\n')}\n`;
}
