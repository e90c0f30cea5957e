// `dnsnet events` (Docker's `docker events`): what happened to containers, networks and the daemon, as it
// happens. The engine emits; the last MAX_KEPT events are kept for `--since`; subscribers (the API's
// streams) hear each new one. Docker's JSON shape (Type, Action, Actor.ID, Actor.Attributes, scope, time,
// timeNano), so `docker events --format json` habits carry over.
import type { EventJson, EventQuery } from '../api/types.js';

const MAX_KEPT = 1024;

/** Whether `ev` passes `q` (time bounds in ns; filters: type, event, container, network, each any-of). */
export function eventMatches(ev: EventJson, q: EventQuery): boolean {
  if (q.since !== undefined && ev.timeNano < q.since) return false;
  if (q.until !== undefined && ev.timeNano > q.until) return false;
  const f = q.filters ?? {};
  const any = (key: string, ok: (v: string) => boolean) => f[key] === undefined || f[key]!.length === 0 || f[key]!.some(ok);
  const idOrName = (v: string) => ev.Actor.ID === v || ev.Actor.ID.startsWith(v) || ev.Actor.Attributes.name === v;
  return (
    any('type', (v) => v === ev.Type) &&
    any('event', (v) => v === ev.Action) &&
    any('container', (v) => (ev.Type === 'container' ? idOrName(v) : ev.Actor.Attributes.container === v || (ev.Actor.Attributes.containerName ?? '') === v)) &&
    any('network', (v) => (ev.Type === 'network' ? idOrName(v) : false))
  );
}

export class Events {
  private readonly kept: EventJson[] = [];
  private readonly listeners = new Set<(ev: EventJson) => void>();
  private lastNano = 0;

  emit(type: EventJson['Type'], action: string, id: string, attributes: Record<string, string> = {}, scope: EventJson['scope'] = 'local'): void {
    // Distinct, increasing stamps (ms from the clock; a double near 1.8e18 has a spacing of 256 ns, so two
    // events in one ms are kept apart by 1024 ns), so --since / --until cut cleanly.
    const timeNano = Math.max(Date.now() * 1e6, this.lastNano + 1024);
    this.lastNano = timeNano;
    const ev: EventJson = { Type: type, Action: action, Actor: { ID: id, Attributes: attributes }, scope, time: Math.floor(timeNano / 1e9), timeNano };
    this.kept.push(ev);
    if (this.kept.length > MAX_KEPT) this.kept.shift();
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch {
        // a listener's trouble is its own
      }
    }
  }

  /** The kept events that pass `q`, oldest first. */
  past(q: EventQuery): EventJson[] {
    return this.kept.filter((ev) => eventMatches(ev, q));
  }

  subscribe(listener: (ev: EventJson) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
