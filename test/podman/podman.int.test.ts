// Podman 4.3 itself with dnsnet's aardvark-dns (rootful, private, offline: test/helpers/podman.ts):
// `podman network create` + `podman run` on a network with DNS, and what a user of it sees by name.
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NO_PODMAN, createPodman, type PodmanEnv } from '../helpers/podman.js';

const d = NO_PODMAN === '' ? describe : describe.skip;
if (NO_PODMAN !== '') console.log(`skipped: the Podman tests: ${NO_PODMAN}`);

let p: PodmanEnv;
beforeEach(async () => {
  p = await createPodman();
}, 120_000);
afterEach(async () => {
  const dir = p.dir;
  await p.teardown();
  expect(fs.existsSync(dir)).toBe(false);
}, 180_000);

const answers = (out: string) => out.split('\n').filter((l) => l !== '' && !l.startsWith(';'));
const status = (out: string) => /status: ([A-Z]+)/.exec(out)?.[1];

d('Podman with dnsnet as its aardvark-dns', () => {
  it('two containers resolve each other by name over UDP and TCP, also from their resolv.conf', async () => {
    const gw = await p.network('web', '10.231.7.0/24');
    await p.run('c1', 'web');
    await p.run('c2', 'web', ['--network-alias', 'api']);
    const ip2 = await p.ip('c2', 'web');
    expect(answers(await p.dig('c1', ['+short', 'c2', `@${gw}`]))).toEqual([ip2]);
    expect(answers(await p.dig('c1', ['+tcp', '+short', 'api', `@${gw}`]))).toEqual([ip2]);
    expect(answers(await p.dig('c1', ['+short', 'c2.dns.podman', `@${gw}`]))).toEqual([ip2]);
    // What Podman wrote for the container (the gateway first, search dns.podman), through glibc.
    const resolv = String((await p.pm(['exec', 'c1', 'cat', '/etc/resolv.conf'])).stdout);
    expect(resolv).toMatch(new RegExp(`^nameserver ${gw.replace(/\./g, '\\.')}$`, 'm'));
    expect(resolv).toContain('search dns.podman');
    const getent = await p.pm(['exec', 'c1', 'getent', 'hosts', 'c2']);
    expect(String(getent.stdout).trim().split(/\s+/)[0]).toBe(ip2);
    // A container removed is gone from DNS.
    await p.pm(['rm', '-f', '-t', '0', 'c2']);
    expect(answers(await p.dig('c1', ['+short', 'c2', `@${gw}`]))).toEqual([]);
  });

  it('PTR of a container names it', async () => {
    const gw = await p.network('web', '10.231.8.0/24');
    await p.run('c1', 'web');
    await p.run('c2', 'web');
    const out = await p.dig('c1', ['-x', await p.ip('c2', 'web'), `@${gw}`]);
    expect(status(out)).toBe('NOERROR');
    expect(answers(out).map((l) => l.split(/\s+/)[4])).toContain('c2.');
  });

  it("a third network's names do not leak, through either gateway", async () => {
    const gw1 = await p.network('front', '10.231.9.0/24');
    const gw2 = await p.network('back', '10.231.10.0/24');
    await p.run('c1', 'front');
    await p.run('c2', 'front');
    await p.run('c3', 'back');
    expect(answers(await p.dig('c1', ['+short', 'c2', `@${gw1}`]))).toEqual([await p.ip('c2', 'front')]);
    for (const gw of [gw1, gw2]) {
      expect(answers(await p.dig('c1', ['+short', 'c3', `@${gw}`]))).toEqual([]);
      expect(answers(await p.dig('c1', ['+short', 'c3.dns.podman', `@${gw}`]))).toEqual([]);
    }
    expect(answers(await p.dig('c3', ['+short', 'c1', `@${gw2}`]))).toEqual([]);
  });

  it('the upstream down: SERVFAIL within the client\'s first try', async () => {
    const gw = await p.network('web', '10.231.11.0/24');
    await p.run('c1', 'web');
    expect(answers(await p.dig('c1', ['+short', 'testname', `@${gw}`]))).toEqual(['198.51.100.1']);
    p.stopUpstream();
    const out = await p.dig('c1', ['testname.', `@${gw}`]); // dig +time=3 +tries=1: one try
    expect(status(out)).toBe('SERVFAIL');
    expect(answers(await p.dig('c1', ['+short', 'c1', `@${gw}`]))).toEqual([await p.ip('c1', 'web')]);
  });

  it('a change of the host resolv.conf reaches running containers', async () => {
    const gw = await p.network('web', '10.231.12.0/24');
    await p.run('c1', 'web');
    await p.dnsmasq('127.1.1.2', ['/second-server.test/192.168.100.2']);
    expect(answers(await p.dig('c1', ['+short', 'second-server.test', `@${gw}`]))).toEqual([]);
    fs.writeFileSync(p.resolvConf, 'nameserver 127.1.1.2\n');
    let got: string[] = [];
    for (let i = 0; i < 40 && got[0] !== '192.168.100.2'; i++) {
      await new Promise((r) => setTimeout(r, 250));
      got = answers(await p.dig('c1', ['+short', 'second-server.test', `@${gw}`]));
    }
    expect(got).toEqual(['192.168.100.2']);
  });
});
