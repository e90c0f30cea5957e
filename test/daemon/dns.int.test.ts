// The embedded resolver end to end: real containers made by the CLI, real clients inside them
// (ping, getent, dig), a fake upstream on 127.x, nothing leaving the machine.
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDnsnetEnv, leftovers, type DnsnetEnv } from '../helpers/dnsnet-env.js';
import { FAKE_DNS, randomLoopback, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';

interface Ctr {
  Id: string;
  NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
}

let e: DnsnetEnv;
let upstream: FakeUpstream;

beforeEach(async () => {
  const ip = randomLoopback();
  upstream = await startFakeUpstream(ip, { 'www.example.test': '192.0.2.44', 'gone.example.test': 'NXDOMAIN' });
  e = await createDnsnetEnv(`nameserver ${ip}\n`);
  await e.ok(['network', 'create', 'app']);
});

afterEach(async () => {
  await e.teardown();
  await upstream.close();
  expect(await leftovers(e)).toEqual([]);
});

const ip = async (ctr: string, net = 'app') => (await e.json<Ctr[]>(['inspect', ctr]))[0]!.NetworkSettings.Networks[net]!.IPAddress;

async function waitForLog(ctr: string, text: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await e.ok(['logs', ctr])).includes(text)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${ctr} never logged "${text}": ${await e.ok(['logs', ctr])}`);
}

/** dig inside a container: +short unless other flags are given. */
async function dig(ctr: string, args: string[]): Promise<string> {
  const r = await e.cli(['exec', ctr, 'dig', '+time=2', '+tries=1', '@127.0.0.11', ...args]);
  return String(r.stdout);
}

describe('names on a user-defined network', () => {
  it('ping by name both ways; names, aliases, short ID, hostname and name.network resolve', async () => {
    const id = (await e.ok(['run', '-d', '--name', 'tomcat81', '--network', 'app', '--network-alias', 'web', '--hostname', 'tc81', 'sleep', 'infinity'])).trim();
    await e.ok(['run', '-d', '--name', 'tomcat82', '--network', 'app', 'sleep', 'infinity']);
    const ip81 = await ip('tomcat81');
    expect((await e.cli(['exec', 'tomcat82', 'ping', '-c1', '-W2', 'tomcat81'])).exitCode).toBe(0);
    expect((await e.cli(['exec', 'tomcat81', 'ping', '-c1', '-W2', 'tomcat82'])).exitCode).toBe(0);
    for (const name of ['tomcat81', 'web', id.slice(0, 12), 'tc81', 'tomcat81.app', 'TomCat81', 'web.app']) {
      // A short ID of digits only (1 in ~280 IDs) is a number to getent (inet_aton), never a name: ask DNS then.
      const got = /^\d+$/.test(name) ? (await dig('tomcat82', ['+short', name])).trim() : (await e.ok(['exec', 'tomcat82', 'getent', 'hosts', name])).split(/\s+/)[0];
      expect(got, name).toBe(ip81);
    }
    expect(await e.cli(['run', '--rm', '--network', 'app', 'getent', 'hosts', 'tomcat81'])).toMatchObject({ exitCode: 0 });
  });

  it('answers as SPEC says: TTL 600, mixed case kept, NODATA for AAAA, PTR, NXDOMAIN passed through', async () => {
    await e.ok(['run', '-d', '--name', 'server', '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'cli', '--network', 'app', 'sleep', 'infinity']);
    const srvIp = await ip('server');
    const a = await dig('cli', ['+noall', '+answer', 'SeRvEr', 'A']);
    expect(a.trim()).toMatch(new RegExp(`^SeRvEr\\.\\s+600\\s+IN\\s+A\\s+${srvIp.replace(/\./g, '\\.')}$`));
    const aaaa = await dig('cli', ['+noall', '+comments', 'server', 'AAAA']);
    expect(aaaa).toMatch(/status: NOERROR/);
    expect(aaaa).toMatch(/ANSWER: 0/);
    expect((await dig('cli', ['+short', '-x', srvIp])).trim()).toBe('server.app.');
    expect((await dig('cli', ['+short', 'www.example.test'])).trim()).toBe('192.0.2.44');
    expect(await dig('cli', ['+noall', '+comments', 'gone.example.test'])).toMatch(/status: NXDOMAIN/);
    expect((await dig('cli', ['+tcp', '+short', 'server'])).trim()).toBe(srvIp);
    expect((await dig('cli', ['+tcp', '+short', 'www.example.test'])).trim()).toBe('192.0.2.44');
    expect(upstream.queries).toBeGreaterThanOrEqual(3);
  });

  it('a dead upstream gives SERVFAIL promptly', async () => {
    await upstream.close();
    await e.ok(['run', '-d', '--name', 'lonely', '--network', 'app', 'sleep', 'infinity']);
    const out = await dig('lonely', ['+noall', '+comments', '+time=5', 'www.example.test']);
    expect(out).toMatch(/status: SERVFAIL/);
    upstream = await startFakeUpstream(randomLoopback(), {}); // for afterEach
  });

  it('scopes names: another network cannot resolve them; a link alias is seen only by its container', async () => {
    await e.ok(['network', 'create', 'other']);
    await e.ok(['run', '-d', '--name', 'db', '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'linker', '--network', 'app', '--link', 'db:database', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'plain', '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'outsider', '--network', 'other', 'sleep', 'infinity']);
    const dbIp = await ip('db');
    expect((await dig('linker', ['+short', 'database'])).trim()).toBe(dbIp);
    expect((await dig('plain', ['+noall', '+comments', 'database'])).trim()).toMatch(/NXDOMAIN/);
    expect((await dig('outsider', ['+noall', '+comments', 'db'])).trim()).toMatch(/NXDOMAIN/);
    expect((await dig('outsider', ['+noall', '+comments', 'db.app'])).trim()).toMatch(/NXDOMAIN/);
    expect((await e.cli(['exec', 'outsider', 'ping', '-c1', '-W1', dbIp])).exitCode).not.toBe(0);
  });

  it('aliases may hold `_` (as Compose registers service names): --network-alias and connect --alias', async () => {
    await e.ok(['network', 'create', 'nw']);
    await e.ok(['run', '-d', '--name', 'svc', '--network', 'app', '--network-alias', 'my_alias', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'asker', '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['network', 'connect', '--alias', 'aone_nw', 'nw', 'svc']);
    await e.ok(['network', 'connect', 'nw', 'asker']);
    expect((await dig('asker', ['+short', 'my_alias'])).trim()).toBe(await ip('svc'));
    expect((await dig('asker', ['+short', 'aone_nw'])).trim()).toBe(await ip('svc', 'nw'));
    expect((await e.ok(['exec', 'asker', 'getent', 'hosts', 'my_alias'])).split(/\s+/)[0]).toBe(await ip('svc'));
  });

  it('--link to a container that does not exist yet: the alias resolves once it joins', async () => {
    await e.ok(['run', '-d', '--name', 'early', '--network', 'app', '--link', 'later:lt', 'sleep', 'infinity']);
    expect(await dig('early', ['+noall', '+comments', 'lt'])).toMatch(/NXDOMAIN/);
    await e.ok(['run', '-d', '--name', 'later', '--network', 'app', 'sleep', 'infinity']);
    expect((await dig('early', ['+short', 'lt'])).trim()).toBe(await ip('later'));
    await e.ok(['stop', '-t', '1', 'later']);
    expect(await dig('early', ['+noall', '+comments', 'lt'])).toMatch(/NXDOMAIN/);
  });

  it('--dns servers are dialled from the container: its own loopback, never the host\'s', async () => {
    // The container runs its own DNS server on 127.0.0.61 and names it with --dns; the host has nothing there.
    await e.ok(['run', '-d', '--name', 'self', '--network', 'app', '--dns', '127.0.0.61', '--', process.execPath, FAKE_DNS, '127.0.0.61', '53', JSON.stringify({ 'own.test': '192.0.2.61' })]);
    await waitForLog('self', 'ready');
    expect((await dig('self', ['+short', 'own.test'])).trim()).toBe('192.0.2.61');
    expect((await dig('self', ['+tcp', '+short', 'own.test'])).trim()).toBe('192.0.2.61');
    expect(upstream.names).not.toContain('own.test');
    const resolv = await e.ok(['exec', 'self', 'cat', '/etc/resolv.conf']);
    expect(resolv).toContain("# Upstreams (--dns), queried from the container's network namespace: 127.0.0.61");
  });

  // moby#47822's regression test: a DNS server container on an --internal network, named with --dns.
  it('--dns naming a DNS server container on an --internal network is reached', async () => {
    await e.ok(['network', 'create', '--internal', 'inet']);
    // On its own address (127.0.0.11:53 is the embedded resolver's, so not the wildcard).
    const table = JSON.stringify({ 'svc.internal.test': '192.0.2.47' });
    await e.ok(['run', '-d', '--name', 'nsrv', '--network', 'inet', '--', 'sh', '-c', `exec "$0" "$1" "$(hostname -i)" 53 "$2"`, process.execPath, FAKE_DNS, table]);
    await waitForLog('nsrv', 'ready');
    const srv = await ip('nsrv', 'inet');
    const r = await e.cli(['run', '--rm', '--network', 'inet', '--dns', srv, 'dig', '+short', '+time=2', '+tries=1', '@127.0.0.11', 'svc.internal.test']);
    expect(String(r.stdout).trim()).toBe('192.0.2.47');
    // Without --dns the host's upstreams stay out of reach of an --internal network.
    const plain = await e.cli(['run', '--rm', '--network', 'inet', 'dig', '+time=2', '+tries=1', '@127.0.0.11', 'www.example.test']);
    expect(String(plain.stdout)).toMatch(/status: SERVFAIL/);
    expect(upstream.names).not.toContain('www.example.test');
  });

  it('a large answer is truncated over UDP and complete over TCP', async () => {
    const n = 40;
    for (let i = 0; i < n; i++) await e.ok(['run', '-d', '--name', `w${i}x`, '--network', 'app', '--network-alias', 'pool', 'sleep', 'infinity']);
    const udp = await dig('w0x', ['+noall', '+comments', '+answer', '+ignore', '+noedns', 'pool']);
    expect(udp).toMatch(/flags: qr[^;]*\btc\b/);
    const udpAnswers = udp.split('\n').filter((l) => /\sIN\s+A\s/.test(l)).length;
    expect(udpAnswers).toBeLessThan(n);
    const tcp = (await dig('w0x', ['+tcp', '+short', 'pool'])).trim().split('\n');
    expect(new Set(tcp).size).toBe(n);
  });

  it('a name resolves the moment run -d returns and stops resolving when its container stops', async () => {
    await e.ok(['run', '-d', '--name', 'watcher', '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'fresh', '--network', 'app', 'sleep', 'infinity']);
    expect((await dig('watcher', ['+short', 'fresh'])).trim()).toBe(await ip('fresh'));
    await e.ok(['stop', '-t', '1', 'fresh']);
    expect(await dig('watcher', ['+noall', '+comments', 'fresh'])).toMatch(/NXDOMAIN/);
  });

  it('a lookup loop against an existing name loses nothing while 20 other containers start and stop', async () => {
    await e.ok(['run', '-d', '--name', 'stable', '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'asker', '--network', 'app', 'sleep', 'infinity']);
    const stableIp = await ip('stable');
    // The loop runs inside `asker` until a stop file appears; every answer is checked.
    const loop = e.cli(
      ['exec', 'asker', 'sh', '-c', 'n=0; bad=0; while [ ! -e /tmp/dnsnet-stop-$1 ]; do r=$(dig +short +time=2 +tries=1 @127.0.0.11 stable); n=$((n+1)); [ "$r" = "$2" ] || bad=$((bad+1)); done; echo "$n $bad"', 'sh', e.defaultBridge, stableIp],
      { timeout: 120_000 },
    );
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        await e.ok(['run', '-d', '--name', `churn${i}`, '--network', 'app', 'sleep', 'infinity']);
        await e.ok(['rm', '-f', `churn${i}`]);
      }),
    );
    await execa('touch', [`/tmp/dnsnet-stop-${e.defaultBridge}`]);
    const [n, bad] = String((await loop).stdout).trim().split(' ').map(Number);
    await execa('rm', ['-f', `/tmp/dnsnet-stop-${e.defaultBridge}`]);
    expect(n).toBeGreaterThan(10);
    expect(bad).toBe(0);
  });

  it('an --internal network answers its names but forwards nothing', async () => {
    await e.ok(['network', 'create', '--internal', 'vault']);
    await e.ok(['run', '-d', '--name', 'safe', '--network', 'vault', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'teller', '--network', 'vault', 'sleep', 'infinity']);
    expect((await dig('teller', ['+short', 'safe'])).trim()).toBe(await ip('safe', 'vault'));
    const before = upstream.queries;
    expect(await dig('teller', ['+noall', '+comments', 'www.example.test'])).toMatch(/status: SERVFAIL/);
    expect(upstream.queries).toBe(before);
  });

  it('an IPv6 network: containers get both families, AAAA answers, ping6 by name', async () => {
    await e.ok(['network', 'create', '--ipv6', 'dual']);
    await e.ok(['run', '-d', '--name', 'six1', '--network', 'dual', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'six2', '--network', 'dual', 'sleep', 'infinity']);
    const [c] = await e.json<{ NetworkSettings: { Networks: Record<string, { IPAddress: string; GlobalIPv6Address: string }> } }[]>(['inspect', 'six1']);
    const v6 = c!.NetworkSettings.Networks.dual!.GlobalIPv6Address;
    expect(v6).toMatch(/^fd[0-9a-f:]+$/);
    expect((await dig('six2', ['+short', 'six1', 'AAAA'])).trim()).toBe(v6);
    expect((await dig('six2', ['+short', 'six1', 'A'])).trim()).toBe(c!.NetworkSettings.Networks.dual!.IPAddress);
    expect((await e.cli(['exec', 'six2', 'ping', '-6', '-c1', '-W2', 'six1'])).exitCode).toBe(0);
    expect(await e.ok(['exec', 'six1', 'cat', '/etc/hosts'])).toContain(`${v6}\tsix1`.replace('six1', (await e.json<{ Config: { Hostname: string } }[]>(['inspect', 'six1']))[0]!.Config.Hostname));
  });
});
