// `dnsnet events` flags (pure): --since / --until as Docker takes them (an RFC 3339 date, Unix seconds, or a
// duration like 10m or 1h30m meaning that long ago), --filter key=value, and how an event is printed.
import type { EventJson } from '../api/types.js';
import { DnsnetError } from '../errors.js';

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A time flag -> ns since the epoch; `now` in ms. */
export function parseEventTime(flag: string, text: string, now = Date.now()): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1e9);
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length > 0 && parts.map((p) => p[0]).join('') === t) {
    const ms = parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_MS[p[2]!]!, 0);
    return Math.round((now - ms) * 1e6);
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(t)) {
    const at = Date.parse(t);
    if (!Number.isNaN(at)) return at * 1e6;
  }
  throw new DnsnetError('invalid', `invalid value for ${flag}: "${text}": expected an RFC 3339 time, Unix seconds, or a duration such as 10m`);
}

/** `--filter k=v` (repeatable) -> the API's query string pairs; an unknown key is refused. */
export function eventFilters(filters: string[]): string[] {
  for (const f of filters) {
    const key = f.slice(0, Math.max(0, f.indexOf('=')));
    if (!['type', 'event', 'container', 'network'].includes(key) || f.slice(key.length + 1) === '') {
      throw new DnsnetError('invalid', `invalid filter "${f}": expected type=container|network|daemon, event=ACTION, container=NAME|ID or network=NAME|ID`);
    }
    if (key === 'type' && !['container', 'network', 'daemon'].includes(f.slice(5))) throw new DnsnetError('invalid', `invalid filter "${f}": type is container, network or daemon`);
  }
  return filters;
}

/** Docker's line: `2026-12-02T03:00:00.123000000Z container start ID (image=..., name=web)`. */
export function formatEventLine(ev: EventJson): string {
  // The daemon stamps ms and keeps events of one ms apart in steps of 1024 ns; near 1.8e18 a double is off by
  // up to 128 ns, which the rounding to those steps takes away.
  const ms = Math.floor((ev.timeNano + 512) / 1e6);
  const sub = Math.min(999_999, Math.max(0, Math.round((ev.timeNano - ms * 1e6) / 1024) * 1024));
  const iso = new Date(ms).toISOString().replace(/\.(\d{3})Z$/, (_, frac: string) => `.${frac}${String(sub).padStart(6, '0')}Z`);
  const attrs = Object.keys(ev.Actor.Attributes)
    .sort()
    .map((k) => `${k}=${ev.Actor.Attributes[k]}`)
    .join(', ');
  return `${iso} ${ev.Type} ${ev.Action} ${ev.Actor.ID}${attrs ? ` (${attrs})` : ''}\n`;
}
