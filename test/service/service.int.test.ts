// dnsnet as a service (issue 19), end to end with the real CLI and daemon: GET /metrics on the socket and on
// --metrics-addr (values checked against the queries made, the text against Debian's `promtool check metrics`),
// `dnsnet stats` reading the same numbers, `dnsnet events` (live, --since / --until, filters, Docker's line),
// `dnsnet system info`, `dnsnet system reset`, and the systemd unit (`systemd-analyze verify`) with the
// daemon's readiness and stopping notifications received on a NOTIFY_SOCKET of the test's.
import { execa } from 'execa';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, createDnsnetEnv, leftovers, type DnsnetEnv } from '../helpers/dnsnet-env.js';
import { randomLoopback, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { netnsName } from '../../src/state/kernel-names.js';

const PROMTOOL = '/usr/bin/promtool';
const UNIT = fileURLToPath(new URL('../../contrib/systemd/dnsnet.service', import.meta.url));

let e: DnsnetEnv;
let upstream: FakeUpstream;

beforeEach(async () => {
  const ip = randomLoopback();
  upstream = await startFakeUpstream(ip, { 'www.example.test': '192.0.2.44' });
  e = await createDnsnetEnv(`nameserver ${ip}\n`);
});

afterEach(async () => {
  await e.teardown();
  await upstream.close();
  expect(await leftovers(e)).toEqual([]);
});

async function dig(id: string, args: string[]): Promise<string> {
  const r = await execa('nsenter', [`--net=/run/netns/${netnsName(id)}`, '--', 'dig', '+short', '+time=2', '+tries=1', '@127.0.0.11', ...args], { reject: false });
  return String(r.stdout).trim();
}

/** GET /metrics on the daemon's socket. */
function socketMetrics(env: DnsnetEnv): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: path.join(env.env.DNSNET_RUN!, 'dnsnet.sock'), path: '/metrics' }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text }));
    });
    req.on('error', reject);
  });
}

/** The value of one sample (`name{labels}`, labels in the order written) in a metrics text. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('metrics', () => {
  it('GET /metrics counts each query by network, type and rcode; local, forwarded, TCP and latency; promtool passes; stats reads the same', async () => {
    await e.ok(['network', 'create', 'app']);
    const web = (await e.ok(['run', '-d', '--name', 'web', '--network', 'app', '--', 'sleep', 'infinity'])).trim();
    const webIp = (await e.json<{ NetworkSettings: { Networks: { app: { IPAddress: string } } } }[]>(['inspect', 'web']))[0]!.NetworkSettings.Networks.app.IPAddress;
    expect(await dig(web, ['web'])).toBe(webIp);
    expect(await dig(web, ['web'])).toBe(webIp);
    expect(await dig(web, ['web', 'AAAA'])).toBe('');
    expect(await dig(web, ['-x', webIp])).toBe('web.app.');
    expect(await dig(web, ['nosuch'])).toBe(''); // forwarded: the fake upstream says NXDOMAIN
    expect(await dig(web, ['www.example.test'])).toBe('192.0.2.44');
    expect(await dig(web, ['+tcp', 'web'])).toBe(webIp);
    const m = await socketMetrics(e);
    expect(m.status).toBe(200);
    expect(m.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const t = m.text;
    expect(sample(t, 'dnsnet_resolver_queries_total{network="app",type="A",rcode="NOERROR"}')).toBe(4); // 2 + www + tcp
    expect(sample(t, 'dnsnet_resolver_queries_total{network="app",type="AAAA",rcode="NOERROR"}')).toBe(1);
    expect(sample(t, 'dnsnet_resolver_queries_total{network="app",type="PTR",rcode="NOERROR"}')).toBe(1);
    expect(sample(t, 'dnsnet_resolver_queries_total{network="app",type="A",rcode="NXDOMAIN"}')).toBe(1);
    expect(sample(t, 'dnsnet_resolver_local_total{network="app"}')).toBe(5);
    expect(sample(t, 'dnsnet_resolver_forwarded_total{network="app"}')).toBe(2);
    expect(sample(t, 'dnsnet_resolver_received_total')).toBe(7);
    expect(sample(t, 'dnsnet_resolver_tcp_connections_total')).toBe(1);
    expect(sample(t, 'dnsnet_resolver_network_tcp_connections_total{network="app"}')).toBe(1);
    expect(sample(t, 'dnsnet_resolver_network_dropped_total{network="app"}')).toBe(0);
    // One answer in 16 is timed: after 64 more local answers, 4 or 5 local ones are (the tick is shared).
    expect(sample(t, 'dnsnet_resolver_answer_duration_seconds_bucket{source="forwarded",le="+Inf"}')).toBeLessThanOrEqual(1);
    expect((await dig(web, Array(64).fill('web'))).split('\n')).toHaveLength(64);
    const timed = sample((await socketMetrics(e)).text, 'dnsnet_resolver_answer_duration_seconds_count{source="local"}')!;
    expect(timed).toBeGreaterThanOrEqual(3);
    expect(timed).toBeLessThanOrEqual(5);
    expect(sample(t, 'dnsnet_containers{state="running"}')).toBe(1);
    expect(sample(t, 'dnsnet_networks{driver="bridge"}')).toBe(2);
    expect(t).toMatch(/^dnsnet_build_info\{version="[^"]+",node="v\d+/m);
    // Every family has HELP and TYPE, and the whole text passes Prometheus's own checker.
    for (const name of new Set(t.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(/[{ ]/)[0]!.replace(/_(bucket|sum|count)$/, '')))) {
      expect(t, name).toContain(`# HELP ${name} `);
      expect(t, name).toContain(`# TYPE ${name} `);
    }
    if (fs.existsSync(PROMTOOL)) {
      const check = await execa(PROMTOOL, ['check', 'metrics'], { input: t, reject: false });
      expect(`${String(check.stdout)}${String(check.stderr)}`.trim()).toBe('');
      expect(check.exitCode).toBe(0);
    } else {
      console.log(`[service] ${PROMTOOL} missing (apt-get install prometheus): the text format was checked by this test only`);
    }
    // `dnsnet stats` is the same text, as a table.
    const stats = await e.ok(['stats']);
    expect(stats).toMatch(/dnsnet_resolver_queries_total\{network="app",type="A",rcode="NOERROR"\}\s+68\n/);
    expect(stats).toMatch(/dnsnet_resolver_forwarded_total\{network="app"\}\s+2\n/);
    // A resolv.conf reload is counted, with its time.
    fs.writeFileSync(e.hostResolvConf, fs.readFileSync(e.hostResolvConf, 'utf8') + '# changed\n');
    for (let i = 0; i < 50 && sample((await socketMetrics(e)).text, 'dnsnet_resolvconf_reloads_total') !== 1; i++) await new Promise((r) => setTimeout(r, 100));
    const after = (await socketMetrics(e)).text;
    expect(sample(after, 'dnsnet_resolvconf_reloads_total')).toBe(1);
    expect(sample(after, 'dnsnet_resolvconf_reload_duration_seconds_count')).toBe(1);
  }, 60_000);

  it('--metrics-addr serves /metrics over TCP too; a bad address stops the daemon before it starts', async () => {
    const port = await freePort();
    const bad = await execa(process.execPath, [CLI, 'daemon', '--metrics-addr', 'localhost'], { env: { ...e.env, PATH: process.env.PATH ?? '' }, extendEnv: false, reject: false, timeout: 20_000 });
    expect(bad.exitCode).toBe(125);
    expect(String(bad.stderr)).toMatch(/invalid metrics address "localhost": expected HOST:PORT/);
    const env = { ...e.env, DNSNET_METRICS_ADDR: `127.0.0.1:${port}`, PATH: process.env.PATH ?? '' };
    const r = await execa(process.execPath, [CLI, 'system', 'info', '--format', 'json'], { env, extendEnv: false, reject: false });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect((JSON.parse(String(r.stdout)) as { MetricsAddr: string }).MetricsAddr).toBe(`127.0.0.1:${port}`);
    const text = await new Promise<string>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let s = '';
        res.on('data', (c: Buffer) => (s += c.toString()));
        res.on('end', () => resolve(s));
      }).on('error', reject);
    });
    expect(text).toContain('# TYPE dnsnet_resolver_queries_total counter');
  }, 60_000);
});

describe('events', () => {
  interface Ev {
    Type: string;
    Action: string;
    Actor: { ID: string; Attributes: Record<string, string> };
    timeNano: number;
  }

  it('streams container, network and daemon events as they happen; --since replays, --until ends, filters pick', async () => {
    const stream = e.cli(['events', '--format', 'json'], { timeout: 60_000 });
    const seen: Ev[] = [];
    stream.stdout!.on('data', (c: Buffer) => seen.push(...c.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Ev)));
    await new Promise((r) => setTimeout(r, 500));
    await e.ok(['network', 'create', 'evnet']);
    const id = (await e.ok(['run', '-d', '--name', 'ev1', '--network', 'evnet', '--', 'sleep', 'infinity'])).trim();
    await e.ok(['network', 'disconnect', 'evnet', 'ev1']);
    await e.ok(['network', 'connect', 'evnet', 'ev1']);
    await e.ok(['stop', '-t', '1', 'ev1']);
    await e.ok(['rm', 'ev1']);
    fs.writeFileSync(e.hostResolvConf, fs.readFileSync(e.hostResolvConf, 'utf8') + '# reload\n');
    for (let i = 0; i < 50 && !seen.some((ev) => ev.Action === 'reload'); i++) await new Promise((r) => setTimeout(r, 100));
    await e.ok(['network', 'rm', 'evnet']);
    const want = ['network create', 'container create', 'network connect', 'container start', 'network disconnect', 'network connect', 'network disconnect', 'container die', 'container stop', 'container destroy', 'daemon reload', 'network destroy'];
    for (let i = 0; i < 50 && seen.length < want.length; i++) await new Promise((r) => setTimeout(r, 100));
    stream.kill();
    await stream;
    expect(seen.map((ev) => `${ev.Type} ${ev.Action}`)).toEqual(want);
    expect(seen[3]!.Actor).toEqual({ ID: id, Attributes: { name: 'ev1', image: 'sleep' } });
    expect(seen[7]!.Actor.Attributes.exitCode).toBe('143'); // sleep ends on the SIGTERM of stop
    expect(seen[2]!.Actor.Attributes).toMatchObject({ name: 'evnet', container: id });
    // Replayed: everything since the first one, until now, then the command ends by itself.
    const since = String(seen[0]!.timeNano / 1e9 - 0.0005);
    const until = String(Date.now() / 1000);
    const replay = await e.ok(['events', '--since', since, '--until', until, '--format', 'json']);
    expect(replay.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as Ev).Action)).toEqual(seen.map((ev) => ev.Action));
    const nets = await e.ok(['events', '--since', '1m', '--until', '0s', '--filter', 'type=network', '--filter', 'event=connect']);
    const lines = nets.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z network connect [0-9a-f]{64} \(container=[0-9a-f]{64}, name=evnet, type=bridge\)$/);
    const byName = await e.ok(['events', '--since', '1m', '--until', '0s', '--filter', 'container=ev1', '--format', 'json']);
    expect(byName.trim().split('\n').map((l) => (JSON.parse(l) as Ev).Action)).toEqual(['create', 'start', 'die', 'stop', 'destroy']);
    // A stream that ends at --until while events keep coming: it ends on time and the daemon lives on.
    const pid = Number(fs.readFileSync(path.join(e.env.DNSNET_RUN!, 'dnsnet.pid'), 'utf8'));
    const shortLived = e.cli(['events', '--until', String(Date.now() / 1000 + 0.3), '--format', 'json']);
    for (let i = 0; i < 8; i++) {
      await e.ok(['network', 'create', `burst${i}`]);
      await e.ok(['network', 'rm', `burst${i}`]);
    }
    expect((await shortLived).exitCode).toBe(0);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(true);
    expect(await e.ok(['network', 'ls'])).toContain('bridge');
    const bad = await e.cli(['events', '--filter', 'colour=red']);
    expect(bad.exitCode).toBe(125);
    expect(String(bad.stderr)).toMatch(/invalid filter "colour=red"/);
    const badTime = await e.cli(['events', '--since', 'yesterday']);
    expect(badTime.exitCode).toBe(125);
    expect(String(badTime.stderr)).toMatch(/invalid value for --since: "yesterday"/);
  }, 60_000);
});

describe('system info and system reset', () => {
  it('info says the version, roots, daemon, counts, the host resolv.conf and its upstreams', async () => {
    await e.ok(['network', 'create', 'inf']);
    await e.ok(['run', '-d', '--name', 'i1', '--network', 'inf', '--', 'sleep', 'infinity']);
    const info = await e.json<Record<string, unknown>>(['system', 'info', '--format', 'json']);
    const pid = Number(fs.readFileSync(path.join(e.env.DNSNET_RUN!, 'dnsnet.pid'), 'utf8'));
    expect(info).toMatchObject({
      StateRoot: e.env.DNSNET_ROOT,
      RunRoot: e.env.DNSNET_RUN,
      DaemonPid: pid,
      Containers: { Total: 1, Running: 1, Created: 0, Exited: 0 },
      Networks: { Total: 4, ByDriver: { bridge: 2, host: 1, null: 1 } },
      HostResolvConf: { Path: e.hostResolvConf, Nameservers: [upstream.ip], Upstreams: [upstream.ip] },
    });
    expect(info.Cluster).toBeUndefined();
    expect(['native', 'dgram']).toContain(info.ResolverUdpPath);
    const text = await e.ok(['system', 'info']);
    expect(text).toMatch(/^Server:\n Version: \S+ \(Node\.js v\d+/);
    expect(text).toContain(` Daemon: pid ${pid}, up `);
    expect(text).toContain(`  Upstreams now: ${upstream.ip}\n`);
    expect(text).toContain(' Cluster: none\n');
  }, 60_000);

  it('reset asks first (no: nothing changes), then removes every container, network and image, the bridge, the table, the daemon and the roots', async () => {
    await e.ok(['network', 'create', 'gone']);
    await e.ok(['run', '-d', '--name', 'r1', '--network', 'gone', '--', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'r2', '--', 'sleep', 'infinity']);
    const ids = (await e.ok(['ps', '-q'])).trim().split('\n');
    const no = await e.cli(['system', 'reset'], { input: 'n\n' });
    expect(no.exitCode).toBe(1);
    expect(String(no.stderr)).toMatch(/This will remove every container \(2\), network \(4\) and image \(0\)[\s\S]*aborted: nothing was removed/);
    expect((await e.ok(['ps', '-q'])).trim().split('\n')).toHaveLength(2);
    const pid = Number(fs.readFileSync(path.join(e.env.DNSNET_RUN!, 'dnsnet.pid'), 'utf8'));
    const out = await e.cli(['system', 'reset'], { input: 'y\n' });
    expect(out.exitCode, String(out.stderr)).toBe(0);
    expect(String(out.stdout)).toMatch(/^Removed:\ncontainer (r1|r2)\ncontainer (r1|r2)\n/);
    expect(String(out.stdout)).toContain(`network bridge (${e.defaultBridge})`);
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    expect(fs.existsSync(e.env.DNSNET_ROOT!)).toBe(false);
    expect(fs.existsSync(e.env.DNSNET_RUN!)).toBe(false);
    for (const id of ids) expect(fs.existsSync(`/run/netns/${netnsName(id)}`)).toBe(false);
    expect(String((await execa('ip', ['-o', 'link', 'show'])).stdout)).not.toContain(`${e.defaultBridge}:`);
    expect(String((await execa('nft', ['list', 'tables'])).stdout)).not.toContain(e.table);
  }, 60_000);
});

describe('systemd', () => {
  it('the unit passes systemd-analyze verify, with KillMode=process (containers outlive a stop)', async () => {
    const text = fs.readFileSync(UNIT, 'utf8');
    expect(text).toMatch(/^Type=notify$/m);
    expect(text).toMatch(/^KillMode=process$/m);
    if (!fs.existsSync('/usr/bin/systemd-analyze')) {
      console.log('[service] systemd-analyze missing: the unit was not verified');
      return;
    }
    const dir = fs.mkdtempSync(path.join(e.dir, 'unit-'));
    const unit = path.join(dir, 'dnsnet.service');
    // What setup.sh puts there is the `dnsnet` on the PATH: here an executable of the test's that runs this build.
    const bin = path.join(dir, 'dnsnet');
    fs.writeFileSync(bin, `#!/bin/sh\nexec ${process.execPath} ${CLI} "$@"\n`, { mode: 0o755 });
    fs.writeFileSync(unit, text.replaceAll('@DNSNET@', bin));
    const r = await execa('systemd-analyze', ['verify', unit], { reject: false });
    expect(`${String(r.stdout)}${String(r.stderr)}`.trim()).toBe('');
    expect(r.exitCode).toBe(0);
    // And it would catch a mistake: a unit whose program does not exist fails.
    fs.writeFileSync(unit, text.replaceAll('@DNSNET@', '/nonexistent/dnsnet'));
    expect((await execa('systemd-analyze', ['verify', unit], { reject: false })).exitCode).not.toBe(0);
  });

  it('tells systemd it is ready once it serves, and that it stops on SIGTERM; lines go to stderr unstamped under the journal', async () => {
    if (!fs.existsSync('/usr/bin/systemd-notify')) return console.log('[service] systemd-notify missing: readiness not tested');
    // NOTIFY_SOCKET of our own: a datagram socket read by a small C program (Node has no unix datagram sockets).
    const src = path.join(e.dir, 'notify-recv.c');
    fs.writeFileSync(
      src,
      `#include <stdio.h>\n#include <string.h>\n#include <sys/socket.h>\n#include <sys/un.h>\n#include <unistd.h>\n` +
        `int main(int c, char **v) { int s = socket(AF_UNIX, SOCK_DGRAM, 0); struct sockaddr_un a = {0}; a.sun_family = AF_UNIX;\n` +
        ` strncpy(a.sun_path, v[1], sizeof a.sun_path - 1); unlink(v[1]); if (bind(s, (void *)&a, sizeof a)) return 1; puts("bound"); fflush(stdout);\n` +
        ` char b[4096]; for (;;) { ssize_t n = recv(s, b, sizeof b - 1, 0); if (n <= 0) return 0; b[n] = 0; printf("%s\\n--\\n", b); fflush(stdout); } }\n`,
    );
    const bin = path.join(e.dir, 'notify-recv');
    await execa('gcc', ['-O1', '-o', bin, src]);
    const sock = path.join(e.dir, 'notify.sock');
    const recv = execa(bin, [sock], { reject: false });
    let got = '';
    recv.stdout!.on('data', (c: Buffer) => (got += c.toString()));
    for (let i = 0; i < 50 && !got.includes('bound'); i++) await new Promise((r) => setTimeout(r, 20));
    const daemon = execa(process.execPath, [CLI, 'daemon'], { env: { ...e.env, NOTIFY_SOCKET: sock, JOURNAL_STREAM: '8:1', PATH: process.env.PATH ?? '' }, extendEnv: false, reject: false });
    try {
      for (let i = 0; i < 100 && !got.includes('READY=1'); i++) await new Promise((r) => setTimeout(r, 50));
      expect(got).toContain('READY=1');
      expect(got).toContain(`STATUS=serving ${path.join(e.env.DNSNET_RUN!, 'dnsnet.sock')}`);
      expect(await e.ok(['network', 'ls'])).toContain('bridge'); // it answers, as it said
      daemon.kill('SIGTERM');
      const done = await daemon;
      expect(done.exitCode).toBe(0);
      expect(got).toContain('STOPPING=1');
      // Under the journal (JOURNAL_STREAM set) a line has no timestamp of its own: journald stamps it.
      expect(String(done.stderr)).toMatch(/^\[daemon\] serving /m);
    } finally {
      daemon.kill('SIGKILL');
      recv.kill();
      await recv;
    }
  }, 60_000);
});
