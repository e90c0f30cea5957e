// Socket hand-off (root): a helper bound inside a netns passes UDP and TCP 127.0.0.11:53 to this process, then exits.
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { openResolverSockets, startSpareHelper, type ResolverSockets } from '../../src/netns/resolver-sockets.js';
import { attachNetnsWithEndpoints } from '../../src/netns/sandbox.js';
import { createTestNetns, type TestNetns } from '../helpers/netns.js';

let ns: TestNetns | undefined;
let opened: ResolverSockets[] = [];

beforeEach(async () => {
  ns = await createTestNetns();
});

afterEach(async () => {
  for (const s of opened) {
    await new Promise<void>((r) => s.udp.close(() => r()));
    await new Promise<void>((r) => s.tcp.close(() => r()));
  }
  opened = [];
  await ns?.destroy();
  ns = undefined;
});

/** Our own child processes still alive (the helper must be gone once the promise settles). */
async function helperChildren(): Promise<string[]> {
  for (let i = 0; i < 20; i++) {
    const r = await execa('ps', ['--ppid', String(process.pid), '-o', 'args='], { reject: false });
    const left = String(r.stdout).split('\n').filter((l) => l.includes('socket-helper'));
    if (left.length === 0) return left;
    await new Promise((res) => setTimeout(res, 100));
  }
  const r = await execa('ps', ['--ppid', String(process.pid), '-o', 'args='], { reject: false });
  return String(r.stdout).split('\n').filter((l) => l.includes('socket-helper'));
}

describe('openResolverSockets', () => {
  it('hands over UDP and TCP sockets bound to 127.0.0.11:53 inside the netns', async () => {
    const s = await openResolverSockets(ns!.path);
    opened.push(s);
    expect(s.udp.address()).toMatchObject({ address: '127.0.0.11', port: 53 });
    expect(s.tcp.address()).toMatchObject({ address: '127.0.0.11', port: 53 });
    const got = new Promise<string>((resolve) => s.udp.once('message', (_m, rinfo) => resolve(rinfo.address)));
    const conn = new Promise<void>((resolve) => s.tcp.once('connection', (c) => (c.destroy(), resolve())));
    await ns!.exec(['dig', '@127.0.0.11', '+tries=1', '+timeout=1', 'x']);
    expect(await got).toBe('127.0.0.1'); // queries from inside arrive from 127.0.0.1: containers are told apart by socket
    await ns!.exec(['dig', '@127.0.0.11', '+tcp', '+tries=1', '+timeout=1', 'x']);
    await conn;
    expect(await helperChildren()).toEqual([]);
  });

  it('rejects clearly when the netns does not exist', async () => {
    await expect(openResolverSockets('/run/netns/dnt-does-not-exist')).rejects.toThrow(/open resolver sockets in \/run\/netns\/dnt-does-not-exist: .*(No such file|nsenter)/);
    expect(await helperChildren()).toEqual([]);
  });

  it('rejects when the port is taken, and leaves no helper behind', async () => {
    opened.push(await openResolverSockets(ns!.path));
    await expect(openResolverSockets(ns!.path)).rejects.toThrow(/bind udp 127\.0\.0\.11:53: .*EADDRINUSE/);
    expect(await helperChildren()).toEqual([]);
  });

  it('binds even while lo is down: bringing lo up is the caller\'s job (checked here, no error to rely on)', async () => {
    await execa('ip', ['-n', ns!.name, 'link', 'set', 'lo', 'down']);
    const s = await openResolverSockets(ns!.path);
    opened.push(s);
    expect(s.udp.address()).toMatchObject({ address: '127.0.0.11', port: 53 });
  });
});

describe('startSpareHelper (a spare netns)', () => {
  it('binds in a brand-new netns with lo brought up, stays until named, and its netns outlives it', async () => {
    const name = `dnt-${randomBytes(5).toString('hex')}`;
    const helper = startSpareHelper();
    try {
      const s = await helper.bind({ loUp: true, keep: true });
      opened.push(s);
      expect(s.udp.address()).toMatchObject({ address: '127.0.0.11', port: 53 });
      expect(helper.alive).toBe(true); // kept: its pid is what names the netns
      await attachNetnsWithEndpoints(name, helper.pid, []);
      helper.discard();
      expect(await helperChildren()).toEqual([]);
      expect(fs.existsSync(`/run/netns/${name}`)).toBe(true);
      // The sockets answer from inside the named netns after the helper is gone.
      const got = new Promise<void>((resolve) => s.udp.once('message', () => resolve()));
      await execa('ip', ['netns', 'exec', name, 'dig', '@127.0.0.11', '+tries=1', '+timeout=1', 'x'], { reject: false });
      await got;
    } finally {
      helper.discard();
      await execa('ip', ['netns', 'del', name], { reject: false });
    }
  });

  it('discarded before it is named, it leaves nothing', async () => {
    const helper = startSpareHelper();
    await helper.ready;
    helper.discard();
    expect(await helperChildren()).toEqual([]);
  });
});
