import { mkdir, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { watchHostResolvConf, type HostResolvConfWatcher } from '../../src/resolvconf/watcher.js';

// A timeout for delivery, not a speed check: generous, since unit and integration tests share a busy
// 2-core machine (the re-check is 60 s in these tests, so delivery still proves the watch works).
const DEADLINE_MS = 3000;

let dir: string;
let watcher: HostResolvConfWatcher | undefined;
let seen: string[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dnsnet-watch-'));
  seen = [];
});
afterEach(async () => {
  await watcher?.close();
  watcher = undefined;
  await rm(dir, { recursive: true, force: true });
});

// A long re-check period, so that these tests prove the directory watch itself works.
async function start(path: string, recheckMs = 60_000): Promise<void> {
  watcher = watchHostResolvConf(path, (text) => seen.push(text), { recheckMs });
  await watcher.ready;
}

async function delivered(text: string): Promise<void> {
  const until = Date.now() + DEADLINE_MS;
  while (!seen.includes(text)) {
    if (Date.now() > until) throw new Error(`not delivered within ${DEADLINE_MS} ms: ${JSON.stringify(text)}; saw ${JSON.stringify(seen)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('watchHostResolvConf', () => {
  it('sees an in-place write', async () => {
    const file = join(dir, 'resolv.conf');
    await writeFile(file, 'nameserver 10.0.0.1\n');
    await start(file);
    await writeFile(file, 'nameserver 10.0.0.2\n');
    await delivered('nameserver 10.0.0.2\n');
    expect(seen).toEqual(['nameserver 10.0.0.2\n']);
  });

  it('sees a replacement by rename', async () => {
    const file = join(dir, 'resolv.conf');
    await writeFile(file, 'nameserver 10.0.0.1\n');
    await start(file);
    await writeFile(join(dir, 'resolv.conf.tmp'), 'nameserver 10.0.0.3\n');
    await rename(join(dir, 'resolv.conf.tmp'), file);
    await delivered('nameserver 10.0.0.3\n');
    // and the watch survives it
    await writeFile(file, 'nameserver 10.0.0.4\n');
    await delivered('nameserver 10.0.0.4\n');
  });

  it('follows a re-pointed symlink (systemd-resolved layout) and then the new target', async () => {
    const etc = join(dir, 'etc');
    const run1 = join(dir, 'run1');
    const run2 = join(dir, 'run2');
    await Promise.all([mkdir(etc), mkdir(run1), mkdir(run2)]);
    await writeFile(join(run1, 'x'), 'nameserver 10.0.0.1\n');
    await writeFile(join(run2, 'y'), 'nameserver 10.0.0.5\n');
    const link = join(etc, 'resolv.conf');
    await symlink('../run1/x', link);
    await start(link);
    // the current target is watched too
    await writeFile(join(run1, 'x'), 'nameserver 10.0.0.2\n');
    await delivered('nameserver 10.0.0.2\n');
    // re-point atomically, as `ln -sf` and systemd do: new link, renamed over the old one
    await symlink(join(run2, 'y'), join(etc, 'resolv.conf.new'));
    await rename(join(etc, 'resolv.conf.new'), link);
    await delivered('nameserver 10.0.0.5\n');
    // the new target's directory is now watched
    await writeFile(join(run2, 'y'), 'nameserver 10.0.0.6\n');
    await delivered('nameserver 10.0.0.6\n');
  });

  it('reports a deletion as empty text, then the re-created file', async () => {
    const file = join(dir, 'resolv.conf');
    await writeFile(file, 'nameserver 10.0.0.1\n');
    await start(file);
    await unlink(file);
    await delivered('');
    await writeFile(file, 'nameserver 10.0.0.7\n');
    await delivered('nameserver 10.0.0.7\n');
    expect(seen).toEqual(['', 'nameserver 10.0.0.7\n']);
  });

  // Known gap: after the directory is removed and re-created, the directory watch misses the next
  // write in about 3 of 10 runs here, and only the periodic re-check (5 s in the daemon) delivers it.
  // So this test runs with a 1 s re-check: it proves the change arrives, not that the watch saw it.
  it('follows a directory that was removed and re-created (the watch, or at worst the re-check)', async () => {
    const run = join(dir, 'run');
    await mkdir(run);
    const file = join(run, 'resolv.conf');
    await writeFile(file, 'nameserver 10.0.0.1\n');
    await start(file, 1000);
    await rm(run, { recursive: true });
    await mkdir(run);
    await writeFile(file, 'nameserver 10.0.2.1\n');
    await delivered('nameserver 10.0.2.1\n');
    await new Promise((r) => setTimeout(r, 200)); // let chokidar settle the removal
    await writeFile(file, 'nameserver 10.0.2.2\n');
    await delivered('nameserver 10.0.2.2\n');
  });

  it('sees a file that did not exist at start', async () => {
    const file = join(dir, 'resolv.conf');
    await start(file);
    await writeFile(file, 'nameserver 10.0.0.8\n');
    await delivered('nameserver 10.0.0.8\n');
  });

  it('reports a burst once, and nothing when the content comes back the same', async () => {
    const file = join(dir, 'resolv.conf');
    await writeFile(file, 'nameserver 10.0.0.1\n');
    await start(file);
    for (let i = 0; i < 5; i++) await writeFile(file, `nameserver 10.0.1.${i}\n`);
    await delivered('nameserver 10.0.1.4\n');
    await writeFile(file, 'nameserver 10.0.1.4\n'); // same bytes again
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toEqual(['nameserver 10.0.1.4\n']);
  });

  it('catches up through the periodic re-check', async () => {
    const file = join(dir, 'resolv.conf');
    await writeFile(file, 'nameserver 10.0.0.1\n');
    watcher = watchHostResolvConf(file, (text) => seen.push(text), { recheckMs: 200, initialText: 'stale\n' });
    await delivered('nameserver 10.0.0.1\n'); // differs from what the caller said it had
  });

  it('survives a throwing handler', async () => {
    const file = join(dir, 'resolv.conf');
    await writeFile(file, 'nameserver 10.0.0.1\n');
    const errors: unknown[] = [];
    const origError = console.error;
    console.error = (...args: unknown[]) => errors.push(args);
    try {
      watcher = watchHostResolvConf(file, (text) => {
        seen.push(text);
        throw new Error('boom');
      });
      await watcher.ready;
      await writeFile(file, 'nameserver 10.0.0.2\n');
      await delivered('nameserver 10.0.0.2\n');
      await writeFile(file, 'nameserver 10.0.0.3\n');
      await delivered('nameserver 10.0.0.3\n');
      expect(errors.length).toBeGreaterThan(0);
    } finally {
      console.error = origError;
    }
  });

  it('stops after close()', async () => {
    const file = join(dir, 'resolv.conf');
    await writeFile(file, 'nameserver 10.0.0.1\n');
    await start(file, 50);
    await watcher!.close();
    await writeFile(file, 'nameserver 10.0.0.9\n');
    await new Promise((r) => setTimeout(r, 300));
    expect(seen).toEqual([]);
  });
});
