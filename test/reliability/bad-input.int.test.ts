// Bad input everywhere: malformed values for every flag (one line, exit 125, nothing changed, the
// daemon still serving), corrupt and truncated state records, and a host resolv.conf that is binary
// garbage or 10 MB long.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isContainerNetns, ownerTag } from '../../src/state/kernel-names.js';
import { rootsFromEnv } from '../../src/state/paths.js';
import { leftovers, type DnsnetEnv } from '../helpers/dnsnet-env.js';
import type { FakeUpstream } from '../helpers/fake-upstream.js';
import { checkConsistency, daemonPid, envWithUpstream, ipNetnsList, killDaemon, nftTable, pollUntil, resolveAll, type Ctr } from './helpers.js';

let e: DnsnetEnv;
let upstream: FakeUpstream;
let ids: Record<string, string>;

// One env for the whole file: the table below runs ~60 commands against the same state.
beforeAll(async () => {
  ({ e, upstream } = await envWithUpstream());
  await e.ok(['network', 'create', 'app']);
  ids = {};
  for (const n of ['web', 'asker']) ids[n] = (await e.ok(['run', '-d', '--name', n, '--network', 'app', 'sleep', 'infinity'])).trim();
});

afterAll(async () => {
  await e.teardown();
  await upstream.close();
  expect(await leftovers(e)).toEqual([]);
});

/** Everything a bad command could have changed: records on disk, netns, links, the nft table. */
async function snapshot(): Promise<string> {
  const root = e.env.DNSNET_ROOT!;
  const files = [
    ...fs.readdirSync(`${root}/networks`).map((f) => `${f}:${fs.readFileSync(`${root}/networks/${f}`, 'utf8')}`),
    ...fs.readdirSync(`${root}/containers`).flatMap((id) => fs.readdirSync(`${root}/containers/${id}`).map((f) => `${id}/${f}:${fs.readFileSync(`${root}/containers/${id}/${f}`, 'utf8')}`)),
  ];
  // Only this env's kernel objects: links carrying its owner tag (or its default bridge), and netns
  // whose eth0 is the peer of such a link. Other suites may make and remove their own meanwhile.
  const tag = ownerTag(rootsFromEnv(e.env).stateRoot);
  const host = JSON.parse(String((await execa('ip', ['-j', 'link', 'show'])).stdout)) as { ifindex: number; ifname: string; ifalias?: string }[];
  const ours = host.filter((l) => l.ifalias === tag || l.ifname === e.defaultBridge);
  const links = ours.map((l) => l.ifname);
  const ns: string[] = [];
  for (const n of (await ipNetnsList()).filter(isContainerNetns)) {
    const r = await execa('ip', ['-n', n, '-j', 'link', 'show', 'eth0'], { reject: false });
    const peer = r.exitCode === 0 ? (JSON.parse(String(r.stdout)) as { link_index?: number }[])[0]?.link_index : undefined;
    if (peer !== undefined && ours.some((l) => l.ifindex === peer)) ns.push(n);
  }
  return JSON.stringify({ files: files.sort(), ns, links: links.sort(), nft: await nftTable(e.table) });
}

const long = 'a'.repeat(300);
const nl = 'x\nnameserver 192.0.2.1';
const BAD: [string, string[]][] = [
  // names
  ...['-lead', 'a', long, 'a/b', 'a b', 'ünï', 'a\nb', '.x', ''].map((n): [string, string[]] => [`run --name ${JSON.stringify(n)}`, ['run', '-d', '--name', n, 'true']]),
  ...['-lead', 'a', long, 'a/b', 'x\ny', ''].map((n): [string, string[]] => [`network create ${JSON.stringify(n)}`, ['network', 'create', n]]),
  // subnets, gateways, ranges, options
  ...['10.0.0.0/33', '300.1.1.0/24', 'abc', '10.0.0.0/-1', '10.0.0.0', 'fd00::/129', '10.1.2.3/24/8', ''].map((s): [string, string[]] => [`--subnet ${s}`, ['network', 'create', '--subnet', s, 'n-bad']]),
  ['--gateway outside', ['network', 'create', '--subnet', '10.213.77.0/24', '--gateway', '10.213.78.1', 'n-bad']],
  ['--gateway junk', ['network', 'create', '--subnet', '10.213.77.0/24', '--gateway', 'gw', 'n-bad']],
  ['--ip-range outside', ['network', 'create', '--subnet', '10.213.77.0/24', '--ip-range', '10.213.0.0/16', 'n-bad']],
  ['--ip-range junk', ['network', 'create', '--subnet', '10.213.77.0/24', '--ip-range', 'x/y', 'n-bad']],
  ['-o mtu=abc', ['network', 'create', '-o', 'mtu=abc', 'n-bad']],
  ['-o mtu=99999999', ['network', 'create', '-o', 'mtu=99999999', 'n-bad']],
  ['-o mtu=10', ['network', 'create', '-o', 'mtu=10', 'n-bad']],
  ['-o nokey', ['network', 'create', '-o', 'nokey', 'n-bad']],
  ['-o unknown=1', ['network', 'create', '-o', 'com.example.unknown=1', 'n-bad']],
  ['network create app (exists)', ['network', 'create', 'app']],
  // addresses
  ...['x', '1.2.3', '10.0.0.1/24', '999.1.1.1', '::zz', ''].map((ip): [string, string[]] => [`--ip ${ip}`, ['run', '-d', '--network', 'app', '--ip', ip, 'true']]),
  ['--ip outside the subnet', ['run', '-d', '--network', 'app', '--ip', '10.213.99.9', 'true']],
  ['--ip on the default network', ['run', '-d', '--ip', '1.2.3.4', 'true']],
  ['--hostname junk', ['run', '-d', '--network', 'app', '--hostname', 'bad_host!', 'true']],
  ['--hostname newline', ['run', '-d', '--network', 'app', '--hostname', nl, 'true']],
  ['--hostname long', ['run', '-d', '--network', 'app', '--hostname', long, 'true']],
  ['--network-alias newline', ['run', '-d', '--network', 'app', '--network-alias', nl, 'true']],
  // --add-host, --link, --dns*
  ...['nocolon', 'h:', ':1.2.3.4', 'h:1.2.3.4.5', 'bad host:1.2.3.4', 'h:10.0.0.1/8', `h:1.2.3.4\n5.6.7.8 evil`, ''].map((h): [string, string[]] => [`--add-host ${JSON.stringify(h)}`, ['run', '-d', '--add-host', h, 'true']]),
  // (a link to a container that does not exist yet is fine on a user network, as in Docker; not on the default one)
  ...['', ':a', 'web:', 'web:bad alias', `web:${nl}`, 'bad name:x'].map((l): [string, string[]] => [`--link ${JSON.stringify(l)}`, ['run', '-d', '--network', 'app', '--link', l, 'true']]),
  ['--link ghost on the default network', ['run', '-d', '--link', 'ghost', 'true']],
  ...['', 'bad option', `ndots:1\nnameserver 192.0.2.1`, 'ndots:x'].map((o): [string, string[]] => [`--dns-option ${JSON.stringify(o)}`, ['run', '-d', '--dns-option', o, 'true']]),
  ...['a b', nl, ''].map((d): [string, string[]] => [`--dns-search ${JSON.stringify(d)}`, ['run', '-d', '--dns-search', d, 'true']]),
  ...['1.2.3', 'x', '127.0.0.1:99999', ''].map((d): [string, string[]] => [`--dns ${d}`, ['run', '-d', '--dns', d, 'true']]),
  ['-e =x', ['run', '-d', '-e', '=x', 'true']],
  ['-w relative', ['run', '-d', '-w', 'rel/dir', 'true']],
  ['--rootfs relative', ['run', '-d', '--rootfs', 'rel', 'true']],
  ['--rootfs without /etc', ['run', '-d', '--rootfs', '/proc/self/fdinfo', 'true']],
  // connect / disconnect / others
  ['connect --ip junk', ['network', 'connect', '--ip', 'x', 'bridge', 'web']],
  ['connect --alias newline', ['network', 'connect', '--alias', nl, 'bridge', 'web']],
  ['connect already connected', ['network', 'connect', 'app', 'web']],
  ['connect no such network', ['network', 'connect', 'nosuch', 'web']],
  ['disconnect not connected', ['network', 'disconnect', 'bridge', 'web']],
  ['network rm in use', ['network', 'rm', 'app']],
  ['network rm bridge', ['network', 'rm', 'bridge']],
  ['stop -t junk', ['stop', '-t', 'soon', 'web']],
  ['rm running without -f', ['rm', 'web']],
  ['inspect ambiguous/short ref', ['inspect', 'ab']],
  ['unknown flag', ['run', '--bogus', 'true']],
];

it(`${BAD.length} malformed commands: one line, exit 125, nothing changed, the daemon still serving`, { timeout: 180_000 }, async () => {
  const pid = daemonPid(e);
  const before = await snapshot();
  const seen = JSON.parse(before) as { ns: string[]; links: string[] };
  expect(seen.ns.length).toBeGreaterThanOrEqual(2); // the env's containers: the snapshot sees its objects
  expect(seen.links.length).toBeGreaterThanOrEqual(3);
  const problems: string[] = [];
  for (const [what, args] of BAD) {
    const r = await e.cli(args);
    const lines = String(r.stderr).trim().split('\n');
    if (r.exitCode !== 125) problems.push(`${what}: exit ${r.exitCode} (${String(r.stderr).trim()}) stdout ${String(r.stdout).trim()}`);
    else if (lines.length !== 1 || !lines[0]!.startsWith('dnsnet: ')) problems.push(`${what}: stderr not one "dnsnet: " line: ${JSON.stringify(String(r.stderr))}`);
    if (r.exitCode === 0) await e.cli(['rm', '-f', String(r.stdout).trim()]); // keep the next cases honest
  }
  expect(problems).toEqual([]);
  expect(await snapshot()).toBe(before);
  expect(daemonPid(e)).toBe(pid);
  expect(await resolveAll(ids.asker!, ['web'])).toMatchObject({ web: { rcode: 'NOERROR' } });
  console.log(`[reliability] bad input: ${BAD.length} malformed commands, each exit 125 with one line, state and kernel unchanged`);
});

it('corrupt and truncated state records are skipped with a warning; the daemon serves the rest', async () => {
  const root = e.env.DNSNET_ROOT!;
  const junkNet = `${root}/networks/${crypto.randomBytes(32).toString('hex')}.json`;
  const junkCtrDir = `${root}/containers/${crypto.randomBytes(32).toString('hex')}`;
  const emptyCtrDir = `${root}/containers/${crypto.randomBytes(32).toString('hex')}`;
  await killDaemon(e);
  fs.writeFileSync(junkNet, crypto.randomBytes(4096));
  fs.mkdirSync(junkCtrDir);
  fs.mkdirSync(emptyCtrDir);
  const webRecord = fs.readFileSync(`${root}/containers/${ids.web}/config.json`, 'utf8');
  fs.writeFileSync(`${junkCtrDir}/config.json`, webRecord.slice(0, webRecord.length / 2)); // truncated
  fs.writeFileSync(`${root}/networks/wrong.json`, JSON.stringify({ schema: 999, id: 'x' }));
  try {
    const ps = await e.ok(['ps']);
    expect(ps).toContain('web');
    const log = fs.readFileSync(`${e.env.DNSNET_RUN}/daemon.log`, 'utf8');
    expect(log).toContain(`skipping corrupt network record ${junkNet}`);
    expect(log).toContain(`skipping corrupt container record ${junkCtrDir}/config.json`);
    expect(log).toMatch(/skipping corrupt network record .*wrong\.json: schema version 999/);
    expect(fs.existsSync(emptyCtrDir)).toBe(false); // a directory without a record is a crashed run's leftover
    expect(await resolveAll(ids.asker!, ['web'])).toMatchObject({ web: { rcode: 'NOERROR' } });
    await e.ok(['run', '-d', '--name', 'after-corrupt', '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['rm', '-f', 'after-corrupt']);
  } finally {
    fs.rmSync(junkNet, { force: true });
    fs.rmSync(`${root}/networks/wrong.json`, { force: true });
    fs.rmSync(junkCtrDir, { recursive: true, force: true });
  }
  expect(await checkConsistency(e)).toEqual([]);
});

it('a host resolv.conf of binary garbage or 10 MB is survived: the daemon serves, container files stay sane', { timeout: 60_000 }, async () => {
  const pid = daemonPid(e);
  const resolvOf = (id: string) => `${e.env.DNSNET_ROOT}/containers/${id}/resolv.conf`;
  const good = fs.readFileSync(e.hostResolvConf, 'utf8');
  // Garbage that cannot name a nameserver: no upstream may appear that is not our fake one.
  let garbage = crypto.randomBytes(64 * 1024);
  while (/nameserver/i.test(garbage.toString('latin1'))) garbage = crypto.randomBytes(64 * 1024);
  const huge = `nameserver ${upstream.ip}\n` + `options ndots:1 ${'x'.repeat(100)}\n`.repeat(10 * 1024 * 1024 / 118) + 'search huge.example\n';
  const cases: [string, string | Buffer][] = [
    ['binary garbage', garbage],
    ['10 MB', huge],
  ];
  try {
    for (const [what, content] of cases) {
      fs.writeFileSync(e.hostResolvConf, content);
      // The watcher re-reads: wait until the running container's file changed, or 3 s.
      const before = fs.readFileSync(resolvOf(ids.web!), 'utf8');
      await pollUntil(() => fs.readFileSync(resolvOf(ids.web!), 'utf8') !== before, 3000, 100);
      expect(daemonPid(e), what).toBe(pid);
      expect(await resolveAll(ids.asker!, ['web']), what).toMatchObject({ web: { rcode: 'NOERROR' } });
      const id = (await e.ok(['run', '-d', '--name', 'fresh', '--network', 'app', 'sleep', 'infinity'])).trim();
      const text = fs.readFileSync(resolvOf(id), 'utf8');
      expect(text, what).toMatch(/^nameserver 127\.0\.0\.11$/m);
      expect(text.length, `${what}: generated resolv.conf is ${text.length} bytes`).toBeLessThan(64 * 1024);
      expect(text, what).not.toMatch(/\0/);
      expect(fs.readFileSync(resolvOf(ids.web!), 'utf8').length, what).toBeLessThan(64 * 1024);
      const upstreams = (await e.json<Ctr & { Dnsnet: { Upstreams: string[] } }[]>(['inspect', 'fresh']))[0]!.Dnsnet.Upstreams;
      for (const u of upstreams) expect([upstream.ip, '8.8.8.8', '8.8.4.4'], `${what}: upstream ${u}`).toContain(u);
      await e.ok(['rm', '-f', 'fresh']);
    }
  } finally {
    fs.writeFileSync(e.hostResolvConf, good);
  }
  // Back to normal. Forward nothing until the daemon names only the fake upstream again (while the
  // garbage was in place, its fallback was 8.8.8.8, which a test must never reach).
  const upstreamsOf = async () => (await e.json<{ Dnsnet: { Upstreams: string[] } }[]>(['inspect', 'asker']))[0]!.Dnsnet.Upstreams.join();
  expect(await pollUntil(async () => (await upstreamsOf()) === upstream.ip, 5000, 100)).toBeGreaterThanOrEqual(0);
  expect(await resolveAll(ids.asker!, ['www.example.test'])).toEqual({ 'www.example.test': { rcode: 'NOERROR', answers: ['192.0.2.44'] } });
  expect(daemonPid(e)).toBe(pid);
});
