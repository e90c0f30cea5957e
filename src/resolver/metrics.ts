// The resolver's counters for monitoring (issue 19; rendered by ../daemon/metrics.ts in Prometheus's text
// format): answers per network by query type and rcode, local / forwarded / truncated per network, upstream
// failures per upstream and outcome, TCP connections, and latency histograms of local and forwarded answers.
// Cheap on the hot path: a typed array per network indexed by (type, rcode), no maps, no strings.

/** The query types counted by name; everything else is `other`. */
export const TYPE_NAMES = ['A', 'NS', 'CNAME', 'SOA', 'PTR', 'MX', 'TXT', 'AAAA', 'SRV', 'ANY', 'other'] as const;
const TYPE_CODES = [1, 2, 5, 6, 12, 15, 16, 28, 33, 255];
const OTHER = TYPE_NAMES.length - 1;
const TYPE_INDEX = new Uint8Array(256).fill(OTHER);
TYPE_CODES.forEach((code, i) => (TYPE_INDEX[code] = i));

export const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE', 'RCODE11', 'RCODE12', 'RCODE13', 'RCODE14', 'RCODE15'] as const;

/** Per network: answers by (type, rcode), truncated answers, dropped queries, TCP connections. */
export interface NetMetrics {
  answers: Float64Array;
  truncated: number;
  dropped: number;
  tcp: number;
}

export function newNetMetrics(): NetMetrics {
  return { answers: new Float64Array(TYPE_NAMES.length * 16), truncated: 0, dropped: 0, tcp: 0 };
}

export function countAnswer(m: NetMetrics, qtype: number, rcode: number): void {
  m.answers[(qtype < 256 ? TYPE_INDEX[qtype]! : OTHER) * 16 + (rcode & 15)]!++;
}

/** The non-zero (type, rcode, count) triples of `m`. */
export function answerCounts(m: NetMetrics): { type: string; rcode: string; count: number }[] {
  const out: { type: string; rcode: string; count: number }[] = [];
  for (let i = 0; i < m.answers.length; i++) {
    const n = m.answers[i]!;
    if (n > 0) out.push({ type: TYPE_NAMES[Math.floor(i / 16)]!, rcode: RCODE_NAMES[i % 16]!, count: n });
  }
  return out;
}

/** A latency histogram (seconds), Prometheus's cumulative buckets at render time. */
export class Histogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (seconds <= b[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }

  /** Cumulative counts per bound (then +Inf = count). */
  cumulative(): number[] {
    let acc = 0;
    return Array.from(this.counts, (n) => (acc += n));
  }
}

/** One answer in 16 is timed (for each of local and forwarded): two clock reads on every answer cost ~2 %. */
export const LATENCY_SAMPLE = 16;
export const LATENCY_SAMPLE_MASK = LATENCY_SAMPLE - 1;

/** Local answers take microseconds, forwarded ones milliseconds to seconds. */
export const LOCAL_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01];
export const FORWARD_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface ResolverMetrics {
  perNetwork: Record<string, NetMetrics & { local: number; forwarded: number }>;
  /** upstream -> outcome (timeout, servfail, refused, error) -> count. */
  upstreamFailures: Record<string, Record<string, number>>;
  tcpConnections: number;
  local: Histogram;
  forwarded: Histogram;
}
