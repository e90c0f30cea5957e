// The pure parts of running as a service: the metrics text, the event filters and times, Docker's event line.
import { describe, expect, it } from 'vitest';
import { renderMetrics } from '../../src/daemon/metrics.js';
import { eventMatches, Events } from '../../src/daemon/events.js';
import { countAnswer, FORWARD_BUCKETS, Histogram, LOCAL_BUCKETS, newNetMetrics } from '../../src/resolver/metrics.js';
import { eventFilters, formatEventLine, parseEventTime } from '../../src/cli/events-spec.js';
import type { EventJson } from '../../src/api/types.js';

describe('renderMetrics', () => {
  const net = newNetMetrics();
  countAnswer(net, 1, 0);
  countAnswer(net, 1, 0);
  countAnswer(net, 28, 3);
  countAnswer(net, 999, 2); // a type past 255: other
  const local = new Histogram(LOCAL_BUCKETS);
  local.observe(0.00002);
  local.observe(0.02); // past the last bound: only +Inf
  const text = renderMetrics({
    version: '1.2.3',
    nodeVersion: 'v20.0.0',
    startedAt: new Date(1_700_000_000_000),
    containers: { running: 2, created: 0, exited: 1 },
    networks: { bridge: 2, null: 1 },
    resolver: { queries: 9, local: 3, forwarded: 1, upstreamFailures: 0, dropped: 1, queued: 0, merged: 0, udpPath: 'dgram', perNetwork: {} },
    resolverDetail: { perNetwork: { 'a"b': { ...net, local: 3, forwarded: 1 } }, upstreamFailures: { '127.0.0.1': { timeout: 2 } }, tcpConnections: 1, local, forwarded: new Histogram(FORWARD_BUCKETS) },
    reloads: { count: 1, seconds: [0.003] },
  });

  it('writes each family with HELP and TYPE, labels escaped', () => {
    expect(text).toContain('# TYPE dnsnet_resolver_queries_total counter\n');
    expect(text).toContain('dnsnet_resolver_queries_total{network="a\\"b",type="A",rcode="NOERROR"} 2\n');
    expect(text).toContain('dnsnet_resolver_queries_total{network="a\\"b",type="AAAA",rcode="NXDOMAIN"} 1\n');
    expect(text).toContain('dnsnet_resolver_queries_total{network="a\\"b",type="other",rcode="SERVFAIL"} 1\n');
    expect(text).toContain('dnsnet_resolver_upstream_failures_total{upstream="127.0.0.1",reason="timeout"} 2\n');
    expect(text).toContain('dnsnet_build_info{version="1.2.3",node="v20.0.0"} 1\n');
    expect(text).toContain('dnsnet_daemon_start_time_seconds 1700000000\n');
  });

  it('histograms are cumulative, +Inf is the count', () => {
    expect(text).toContain('dnsnet_resolver_answer_duration_seconds_bucket{source="local",le="0.000025"} 1\n');
    expect(text).toContain('dnsnet_resolver_answer_duration_seconds_bucket{source="local",le="0.01"} 1\n');
    expect(text).toContain('dnsnet_resolver_answer_duration_seconds_bucket{source="local",le="+Inf"} 2\n');
    expect(text).toContain('dnsnet_resolver_answer_duration_seconds_count{source="local"} 2\n');
    expect(text).toContain('dnsnet_resolvconf_reload_duration_seconds_bucket{le="0.005"} 1\n');
  });
});

describe('events', () => {
  const ev = (over: Partial<EventJson>): EventJson => ({ Type: 'container', Action: 'start', Actor: { ID: 'abc123', Attributes: { name: 'web' } }, scope: 'local', time: 1, timeNano: 1e9, ...over });

  it('filters by type, action, container and network (any of each key), and by time', () => {
    expect(eventMatches(ev({}), { filters: { type: ['network', 'container'] } })).toBe(true);
    expect(eventMatches(ev({}), { filters: { type: ['network'] } })).toBe(false);
    expect(eventMatches(ev({}), { filters: { container: ['web'], event: ['start'] } })).toBe(true);
    expect(eventMatches(ev({}), { filters: { container: ['abc'] } })).toBe(true);
    expect(eventMatches(ev({ Type: 'network', Actor: { ID: 'n1', Attributes: { name: 'app', container: 'abc123' } } }), { filters: { network: ['app'] } })).toBe(true);
    expect(eventMatches(ev({}), { since: 2e9 })).toBe(false);
    expect(eventMatches(ev({}), { until: 0.5e9 })).toBe(false);
  });

  it('keeps increasing stamps, and the last 1024', () => {
    const e = new Events();
    for (let i = 0; i < 1100; i++) e.emit('container', 'create', String(i));
    const kept = e.past({});
    expect(kept).toHaveLength(1024);
    expect(kept[0]!.Actor.ID).toBe('76');
    for (let i = 1; i < kept.length; i++) expect(kept[i]!.timeNano).toBeGreaterThan(kept[i - 1]!.timeNano);
  });

  it('parses --since / --until as Docker does, and refuses the rest in one line', () => {
    const now = Date.parse('2026-12-02T10:00:00Z');
    expect(parseEventTime('--since', '1700000000', now)).toBe(1.7e18);
    expect(parseEventTime('--since', '10m', now)).toBe((now - 600_000) * 1e6);
    expect(parseEventTime('--since', '1h30m', now)).toBe((now - 5_400_000) * 1e6);
    expect(parseEventTime('--until', '2026-12-02T09:00:00Z', now)).toBe(Date.parse('2026-12-02T09:00:00Z') * 1e6);
    expect(() => parseEventTime('--since', 'yesterday', now)).toThrow(/invalid value for --since: "yesterday"/);
    expect(eventFilters(['type=network', 'event=connect'])).toEqual(['type=network', 'event=connect']);
    expect(() => eventFilters(['type=volume'])).toThrow(/type is container, network or daemon/);
    expect(() => eventFilters(['label=x'])).toThrow(/invalid filter "label=x"/);
  });

  it("prints Docker's line", () => {
    for (const ms of [Date.parse('2026-12-02T10:00:00.999Z'), Date.parse('2026-12-02T10:00:00.001Z'), 1796181871974]) {
      expect(formatEventLine(ev({ timeNano: ms * 1e6 }))).toContain(`${new Date(ms).toISOString().slice(0, -1)}000000Z`);
      expect(formatEventLine(ev({ timeNano: ms * 1e6 + 2048 }))).toContain(`${new Date(ms).toISOString().slice(0, -1)}002048Z`);
    }
    expect(formatEventLine(ev({ timeNano: Date.parse('2026-12-02T10:00:00.123Z') * 1e6, Actor: { ID: 'abc', Attributes: { name: 'web', image: 'x' } } }))).toBe(
      '2026-12-02T10:00:00.123000000Z container start abc (image=x, name=web)\n',
    );
  });
});
