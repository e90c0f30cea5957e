// dnsnet's aardvark-dns beyond aardvark-dns's own cases: the daemon killed or restarted under netavark, a
// second server for the same directory, the daemon in another netns than netavark's, the pid file, and the
// helper's install and uninstall. Debian 12's netavark 1.4 drives it all (test/helpers/netavark.ts).
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { CLI } from '../helpers/dnsnet-env.js';
import { HAVE_NETAVARK, gatewayOf, ipIn, podmanHostPerTest, randomSubnet4, type Ctr } from '../helpers/netavark.js';

const d = HAVE_NETAVARK ? describe : describe.skip;
if (!HAVE_NETAVARK) console.log('skipped: the Podman drop-in tests need /usr/lib/podman/netavark, iptables and dnsmasq (scripts/setup.sh installs them)');

const t = podmanHostPerTest();

const answers = (out: string) => out.split('\n').filter((l) => l !== '' && !l.startsWith(';'));
const alive = (pid: number | undefined) => {
  try {
    return pid !== undefined && (process.kill(pid, 0), true);
  } catch {
    return false;
  }
};

async function twoContainers(): Promise<{ s: string; a1: Ctr; a2: Ctr }> {
  const s = randomSubnet4();
  const { ctr: a1 } = await t.h.container('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0), aliases: ['a1'] }]);
  const { ctr: a2 } = await t.h.container('atwo', [{ network: 'podman1', subnet: s, ip: ipIn(s, 1) }]);
  t.made.push(a1, a2);
  return { s, a1, a2 };
}

/** Ask until `name` answers `ip` (UDP, 200 ms timeout each); the ms it took. */
async function until(c: Ctr, name: string, server: string, ip: string, limitMs = 15_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    const r = await c.ns.exec(['dig', '+short', '+time=1', '+tries=1', name, `@${server}`]);
    if (answers(String(r.stdout)).includes(ip)) return Date.now() - t0;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`${name} did not come back within ${limitMs} ms`);
}

d('the daemon under netavark', () => {
  for (const how of ['SIGKILL', 'SIGTERM'] as const) {
    it(`a daemon stopped with ${how}: the aardvark-dns process stays, starts a new daemon, names come back; teardown works`, async () => {
      const { s, a1, a2 } = await twoContainers();
      const gw = gatewayOf(s);
      expect(answers(await t.h.dig(a1, ['+short', 'atwo', `@${gw}`]))).toEqual([ipIn(s, 1)]);
      const server = t.h.aardvarkPid();
      const old = t.h.daemonPid();
      process.kill(old!, how);
      const back = await until(a1, 'atwo', gw, ipIn(s, 1));
      console.log(`names back ${back} ms after the daemon got ${how}`);
      expect(t.h.daemonPid()).not.toBe(old);
      expect(alive(t.h.daemonPid())).toBe(true);
      // netavark's pid is still the live server: nothing for it to replace.
      expect(t.h.aardvarkPid()).toBe(server);
      expect(alive(server)).toBe(true);
      // A container added after the restart is seen, and teardown (which needs a live pid) succeeds.
      const { ctr: a3 } = await t.h.container('athree', [{ network: 'podman1', subnet: s, ip: ipIn(s, 2) }]);
      t.made.push(a3);
      expect(answers(await t.h.dig(a3, ['+short', 'a1', `@${gw}`]))).toEqual([ipIn(s, 0)]);
      for (const c of [a3, a2]) expect((await t.h.teardownCtr(c)).exitCode).toBe(0);
      expect(answers(await t.h.dig(a1, ['+short', 'atwo', `@${gw}`]))).toEqual([]);
      expect((await t.h.teardownCtr(a1)).exitCode).toBe(0);
      // The last network gone: the server leaves, and its pid file with it.
      for (let i = 0; i < 100 && alive(server); i++) await new Promise((r) => setTimeout(r, 50));
      expect(alive(server)).toBe(false);
      expect(fs.existsSync(path.join(t.h.config, 'aardvark-dns', 'aardvark.pid'))).toBe(false);
    });
  }

  it('the pid file holds the pid without a newline, and a second server for the same directory takes over', async () => {
    const { s, a1 } = await twoContainers();
    const pidFile = path.join(t.h.config, 'aardvark-dns', 'aardvark.pid');
    const first = fs.readFileSync(pidFile, 'utf8');
    expect(first).toMatch(/^\d+$/);
    // What the daemon serves, as `system podman ls` lists it.
    const ls = await execa(process.execPath, [CLI, 'system', 'podman', 'ls', '--format', 'json'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...t.h.env }, extendEnv: false });
    expect(JSON.parse(String(ls.stdout))).toEqual([
      { dir: path.join(t.h.config, 'aardvark-dns'), port: 53, pid: Number(first), netns: 'daemon', networks: [{ name: 'podman1', internal: false, listen: [gatewayOf(s)], containers: 2 }] },
    ]);
    // What netavark does when it cannot read a live pid: start another one.
    const r = await t.h.inHost([t.h.helper, '--config', path.join(t.h.config, 'aardvark-dns'), '-p', '53', 'run']);
    expect(r.exitCode).toBe(0);
    const second = fs.readFileSync(pidFile, 'utf8');
    expect(second).not.toBe(first);
    for (let i = 0; i < 100 && alive(Number(first)); i++) await new Promise((res) => setTimeout(res, 50));
    expect(alive(Number(first))).toBe(false);
    expect(answers(await t.h.dig(a1, ['+short', 'atwo', `@${gatewayOf(s)}`]))).toEqual([ipIn(s, 1)]);
  });

  it('a network file that no longer parses keeps its last good contents (logged)', async () => {
    const { s, a1 } = await twoContainers();
    const file = path.join(t.h.config, 'aardvark-dns', 'podman1');
    const good = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, `${good}not a container line\n`);
    process.kill(t.h.aardvarkPid()!, 'SIGHUP');
    await new Promise((r) => setTimeout(r, 400));
    expect(answers(await t.h.dig(a1, ['+short', 'atwo', `@${gatewayOf(s)}`]))).toEqual([ipIn(s, 1)]);
    expect(fs.readFileSync(path.join(t.h.env.DNSNET_RUN!, 'daemon.log'), 'utf8')).toMatch(/podman1 line 4: IPv4 address "a" is no IPv4 address \(its last good contents stay\)/);
    fs.writeFileSync(file, good); // netavark's teardown needs its own lines back
  });

  it("the daemon already running in another netns: listeners bound in netavark's netns, upstreams asked from there", async () => {
    // Start this root's daemon from the test's own netns, not the netns netavark runs in.
    const daemon = await execa(process.execPath, [CLI, 'network', 'ls'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...t.h.env }, extendEnv: false, reject: false });
    expect(daemon.exitCode).toBe(0);
    try {
      expect(fs.readlinkSync(`/proc/${t.h.daemonPid()}/ns/net`)).toBe(fs.readlinkSync('/proc/self/ns/net'));
      const { s, a1 } = await twoContainers();
      expect(fs.readlinkSync(`/proc/${t.h.aardvarkPid()}/ns/net`)).not.toBe(fs.readlinkSync('/proc/self/ns/net'));
      expect(answers(await t.h.dig(a1, ['+short', 'atwo', `@${gatewayOf(s)}`]))).toEqual([ipIn(s, 1)]);
      expect(answers(await t.h.dig(a1, ['+tcp', '+short', 'a1', `@${gatewayOf(s)}`]))).toEqual([ipIn(s, 0)]);
      // The upstream is the dnsmasq on 127.0.0.1 of netavark's netns: reachable from there only.
      expect(answers(await t.h.dig(a1, ['+short', 'testname', `@${gatewayOf(s)}`]))).toEqual(['198.51.100.1']);
      expect(answers(await t.h.dig(a1, ['+tcp', '+short', 'testname', `@${gatewayOf(s)}`]))).toEqual(['198.51.100.1']);
    } finally {
      await execa('ip', ['link', 'delete', t.h.env.DNSNET_DEFAULT_BRIDGE!], { reject: false });
    }
  });
});

describe('system podman install / uninstall', () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    execa(process.execPath, [CLI, 'system', 'podman', ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, extendEnv: false, reject: false });

  it('installs an executable aardvark-dns carrying the state root, idempotently; uninstall takes out only ours', async () => {
    const dir = fs.mkdtempSync('/tmp/dnsnet-helper-');
    try {
      const bin = path.join(dir, 'libexec');
      const env = { DNSNET_ROOT: path.join(dir, 'state'), DNSNET_RUN: path.join(dir, 'run') };
      const first = await run(['install', '--dir', bin], env);
      expect(first.exitCode).toBe(0);
      expect(first.stdout).toContain(`installed ${bin}/aardvark-dns`);
      const file = path.join(bin, 'aardvark-dns');
      expect(fs.statSync(file).mode & 0o111).toBe(0o111);
      const text = fs.readFileSync(file, 'utf8');
      expect(text).toContain(`DNSNET_ROOT="\${DNSNET_ROOT:-${env.DNSNET_ROOT}}"`);
      expect((await run(['install', '--dir', bin], env)).stdout).toContain('installed already');
      expect(fs.readFileSync(file, 'utf8')).toBe(text);
      // It is a working aardvark-dns: netavark asks for nothing else than this.
      expect(String((await execa(file, ['--version'])).stdout)).toMatch(/^aardvark-dns 1\.4\.0/);
      expect((await run(['uninstall', '--dir', bin])).stdout).toContain(`removed ${file}`);
      expect(fs.existsSync(file)).toBe(false);
      expect((await run(['uninstall', '--dir', bin])).stdout).toContain('not installed');
      // Someone else's aardvark-dns is left alone, by both.
      fs.writeFileSync(file, '#!/bin/sh\necho theirs\n', { mode: 0o755 });
      for (const cmd of ['install', 'uninstall']) {
        const r = await run([cmd, '--dir', bin]);
        expect(r.exitCode).toBe(125);
        expect(String(r.stderr).trim()).toMatch(new RegExp(`^dnsnet: podman ${cmd}: ${file} (exists and )?is not dnsnet's \\(left as it is\\)$`));
        expect(fs.readFileSync(file, 'utf8')).toBe('#!/bin/sh\necho theirs\n');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
