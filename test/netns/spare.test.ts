import { describe, expect, it } from 'vitest';
import type { BindOptions, ResolverSockets, SocketHelper } from '../../src/netns/resolver-sockets.js';
import { SpareNetns } from '../../src/netns/spare.js';

/** A fake helper: bind resolves (or rejects) at once; counts discards and socket closes. */
function fakeHelpers(outcomes: ('ok' | 'fail')[]) {
  const made: { pid: number; discarded: boolean; alive: boolean; closed: number; bindOpts?: BindOptions }[] = [];
  const start = (): SocketHelper => {
    const outcome = outcomes[made.length] ?? 'ok';
    const rec = { pid: 1000 + made.length, discarded: false, alive: true, closed: 0 } as (typeof made)[number];
    made.push(rec);
    const sockets = { udp: { close: () => rec.closed++ }, tcp: { close: () => rec.closed++ } } as unknown as ResolverSockets;
    return {
      pid: rec.pid,
      ready: Promise.resolve(),
      get alive() {
        return rec.alive;
      },
      discard() {
        rec.discarded = true;
        rec.alive = false;
      },
      bind(opts) {
        rec.bindOpts = opts;
        return outcome === 'ok' ? Promise.resolve(sockets) : Promise.reject(new Error(`helper ${rec.pid} failed`));
      },
    };
  };
  return { made, start };
}

describe('SpareNetns', () => {
  it('prepares one spare (lo up, sockets kept, helper kept) and hands it to the next take', async () => {
    const f = fakeHelpers(['ok']);
    const pool = new SpareNetns(f.start, 5000, false);
    pool.refill();
    pool.refill(); // one on its way is enough
    expect(f.made).toHaveLength(1);
    const s = await pool.take();
    expect(s.helper.pid).toBe(1000);
    expect(f.made[0]!.bindOpts).toMatchObject({ loUp: true, keep: true });
    expect(f.made[0]!.discarded).toBe(false);
  });

  it('prepares one on the spot when none waits', async () => {
    const f = fakeHelpers(['ok']);
    const s = await new SpareNetns(f.start, 5000, false).take();
    expect(s.helper.pid).toBe(1000);
  });

  it('replaces a spare whose helper died (its netns can no longer be named), closing its sockets', async () => {
    const f = fakeHelpers(['ok', 'ok']);
    const pool = new SpareNetns(f.start, 5000, false);
    pool.refill();
    await new Promise((r) => setTimeout(r, 0));
    f.made[0]!.alive = false;
    const s = await pool.take();
    expect(s.helper.pid).toBe(1001);
    expect(f.made[0]!.closed).toBe(2);
  });

  it('tries once more after a failed spare, and reports the second failure', async () => {
    const ok = fakeHelpers(['fail', 'ok']);
    const pool = new SpareNetns(ok.start, 5000, false);
    pool.refill();
    expect((await pool.take()).helper.pid).toBe(1001);
    expect(ok.made[0]!.discarded).toBe(true);

    const bad = fakeHelpers(['fail', 'fail']);
    const pool2 = new SpareNetns(bad.start, 5000, false);
    pool2.refill();
    await expect(pool2.take()).rejects.toThrow('helper 1001 failed');
    expect(bad.made.every((m) => m.discarded)).toBe(true);
  });

  it('close discards the waiting spare and refuses later takes', async () => {
    const f = fakeHelpers(['ok']);
    const pool = new SpareNetns(f.start, 5000, false);
    pool.refill();
    await new Promise((r) => setTimeout(r, 0));
    pool.close();
    await new Promise((r) => setTimeout(r, 0));
    expect(f.made[0]!.discarded).toBe(true);
    expect(f.made[0]!.closed).toBe(2);
    await expect(pool.take()).rejects.toThrow(/shutting down/);
    pool.refill();
    expect(f.made).toHaveLength(1);
  });
});
