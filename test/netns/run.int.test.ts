// PreparedIpBatch (root): an `ip -batch -` started ahead, in the host netns or inside another process's netns.
import { spawn, type ChildProcess } from 'node:child_process';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { PreparedIpBatch, runIpBatch } from '../../src/netns/run.js';
import { createTestNetns, type TestNetns } from '../helpers/netns.js';

let ns: TestNetns | undefined;
let sleeper: ChildProcess | undefined;
afterEach(async () => {
  sleeper?.kill('SIGKILL');
  sleeper = undefined;
  await ns?.destroy();
  ns = undefined;
});

/** A process living in the test netns: the prepared batch enters its netns by pid, as with a spare. */
async function processInNetns(): Promise<number> {
  ns = await createTestNetns();
  sleeper = spawn('ip', ['netns', 'exec', ns.name, 'sleep', '60'], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const pids = (await execa('ip', ['netns', 'pids', ns.name])).stdout.trim();
    if (pids) return Number(pids.split('\n')[0]);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('sleep never showed up in the netns');
}

describe('PreparedIpBatch', () => {
  it('runs its lines inside the netns of the pid it was started for', async () => {
    const pid = await processInNetns();
    const inner = new PreparedIpBatch(pid);
    await new Promise((r) => setTimeout(r, 100)); // really started ahead, waiting on stdin
    expect(inner.ready).toBe(true);
    await runIpBatch(['addr add 10.213.7.7/32 dev lo'], { netns: ns!.name, prepared: inner });
    expect((await execa('ip', ['-n', ns!.name, '-o', 'addr', 'show', 'dev', 'lo'])).stdout).toContain('10.213.7.7/32');
    expect((await execa('ip', ['-o', 'addr', 'show', 'dev', 'lo'])).stdout).not.toContain('10.213.7.7'); // not the host's
    expect(inner.ready).toBe(false); // one use
  });

  it('names the failing line, like a fresh ip -batch', async () => {
    const pid = await processInNetns();
    const inner = new PreparedIpBatch(pid);
    await expect(runIpBatch(['addr add 10.213.7.8/32 dev lo', 'addr add 10.213.7.9/32 dev nosuchdev0'], { netns: ns!.name, prepared: inner })).rejects.toThrow(
      /line 2: addr add 10\.213\.7\.9\/32 dev nosuchdev0/,
    );
  });

  it('a discarded one does nothing and exits; a dead one is replaced by a fresh process', async () => {
    const pid = await processInNetns();
    const unused = new PreparedIpBatch(pid);
    unused.discard();
    expect(unused.ready).toBe(false);
    const dead = new PreparedIpBatch(999_999_999); // no such pid: nsenter fails at once
    for (let i = 0; i < 100 && dead.ready; i++) await new Promise((r) => setTimeout(r, 10));
    expect(dead.ready).toBe(false);
    await runIpBatch(['addr add 10.213.7.10/32 dev lo'], { netns: ns!.name, prepared: dead });
    expect((await execa('ip', ['-n', ns!.name, '-o', 'addr', 'show', 'dev', 'lo'])).stdout).toContain('10.213.7.10/32');
  });
});
