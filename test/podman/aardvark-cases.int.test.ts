// aardvark-dns's own integration cases (its test/1xx-7xx.bats at upstream main, the offline versions that use
// a local dnsmasq), rewritten as our own and run with dnsnet's `aardvark-dns` under Debian 12's netavark 1.4.
// Rewritten rather than vendored: the .bats files need bats and the helpers of their repository, fetch
// nothing but assume a fresh `unshare` per test and root-wide /etc/resolv.conf bind mounts; here each case
// gets its own netns, state root, host resolv.conf and bridges, and is torn down with leftovers checked.
// Where dnsnet answers differently on purpose, the case says so (SERVFAIL at once for a dead upstream
// instead of a client timeout; the next upstream after 1.5 s instead of 2.5 s).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HAVE_NETAVARK, gatewayOf, ipIn, podmanHostPerTest, randomSubnet4, randomSubnet6 } from '../helpers/netavark.js';

const d = HAVE_NETAVARK ? describe : describe.skip;
if (!HAVE_NETAVARK) console.log('skipped: aardvark-dns cases need /usr/lib/podman/netavark, iptables and dnsmasq (scripts/setup.sh installs them)');

const t = podmanHostPerTest();

const ctr = t.ctr;

const answers = (out: string) => out.split('\n').filter((l) => l !== '' && !l.startsWith(';'));
const status = (out: string) => /status: ([A-Z]+)/.exec(out)?.[1];
const queryMs = (out: string) => Number(/Query time: (\d+) msec/.exec(out)?.[1] ?? NaN);

d('100: basic name resolution', () => {
  it('a dead custom DNS server: own names still answer; a forwarded name gets SERVFAIL at once (aardvark-dns lets the client time out)', async () => {
    const s = randomSubnet4();
    const a1 = await ctr('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0), aliases: ['a1', '1a'] }], ['127.0.0.255']);
    const full = await t.h.dig(a1, ['aone', `@${gatewayOf(s)}`]);
    expect(answers(await t.h.dig(a1, ['+short', 'aone', `@${gatewayOf(s)}`]))).toEqual([ipIn(s, 0)]);
    expect(full).not.toContain('recursion requested but not available');
    const out = await t.h.dig(a1, ['testname', `@${gatewayOf(s)}`]);
    expect(status(out)).toBe('SERVFAIL');
  });

  it('a good custom DNS server is asked instead of the host upstream; local answers have TTL 0', async () => {
    await t.h.dnsmasq('127.1.1.53', ['/unique-name.local/192.168.0.1']);
    const s = randomSubnet4();
    const a1 = await ctr('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0), aliases: ['a1', '1a'] }], ['127.1.1.53']);
    expect(await t.h.dig(a1, ['aone', `@${gatewayOf(s)}`])).toMatch(new RegExp(`aone\\.\\s+0\\s+IN\\s+A\\s+${ipIn(s, 0).replace(/\./g, '\\.')}`));
    expect(answers(await t.h.dig(a1, ['+short', 'unique-name.local', `@${gatewayOf(s)}`]))).toEqual(['192.168.0.1']);
    // Not the host's upstream: it would say 198.51.100.1.
    expect(status(await t.h.dig(a1, ['testname', `@${gatewayOf(s)}`]))).toBe('REFUSED');
  });

  it('a silent first server: the next answers after our 1.5 s upstream timeout (aardvark-dns: 2.5 s); then over TCP at once', async () => {
    // A server that reads and never answers, on UDP and TCP 127.5.5.5:53 in the host netns.
    const silent = t.h.inHost([process.execPath, '-e', "const d=require('dgram').createSocket('udp4');d.bind(53,'127.5.5.5');require('net').createServer(()=>{}).listen(53,'127.5.5.5');setTimeout(()=>{},60000)"], { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 300));
    try {
      const s = randomSubnet4();
      const a1 = await ctr('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0) }], ['127.5.5.5', '127.0.0.1']);
      const udp = await t.h.dig(a1, ['testname', `@${gatewayOf(s)}`]);
      expect(answers(udp).join('\n')).toContain('198.51.100.1');
      expect(queryMs(udp)).toBeGreaterThanOrEqual(1400);
      expect(queryMs(udp)).toBeLessThan(4000);
      // Over TCP: dnsnet remembers the silent server for 30 s and asks it last, so this answers at once
      // (aardvark-dns waits for it again).
      const tcp = await t.h.dig(a1, ['+tcp', 'testname', `@${gatewayOf(s)}`]);
      expect(answers(tcp).join('\n')).toContain('198.51.100.1');
      expect(queryMs(tcp)).toBeLessThan(1400);
    } finally {
      silent.kill('SIGKILL');
      await silent.catch(() => undefined);
    }
  });

  it('names over UDP and TCP, several on one TCP connection (+keepopen), forwarding over both', async () => {
    const s = randomSubnet4();
    const a1 = await ctr('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0), aliases: ['a1', '1a'] }]);
    const gw = `@${gatewayOf(s)}`;
    expect(answers(await t.h.dig(a1, ['+short', 'aone', gw]))).toEqual([ipIn(s, 0)]);
    expect(answers(await t.h.dig(a1, ['+tcp', '+short', 'aone', gw]))).toEqual([ipIn(s, 0)]);
    expect(answers(await t.h.dig(a1, ['+tcp', '+short', '+keepopen', gw, 'aone', 'a1', '1a']))).toEqual([ipIn(s, 0), ipIn(s, 0), ipIn(s, 0)]);
    expect(answers(await t.h.dig(a1, ['+short', 'testname', gw]))).toEqual(['198.51.100.1']);
    const tcp = await t.h.dig(a1, ['+tcp', 'testname', gw]);
    expect(tcp).toContain('198.51.100.1');
    expect(tcp).not.toContain('recursion requested but not available');
  });

  it('a short name that is no container is forwarded: the upstream says REFUSED, or answers it', async () => {
    const s = randomSubnet4();
    const a1 = await ctr('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0), aliases: ['a1', '1a'] }]);
    expect(status(await t.h.dig(a1, ['someshortname', `@${gatewayOf(s)}`]))).toBe('REFUSED');
    expect(answers(await t.h.dig(a1, ['+short', 'testname', `@${gatewayOf(s)}`]))).toEqual(['198.51.100.1']);
  });

  it('an IPv6-only network: AAAA of a container, and a forwarded AAAA', async () => {
    const s = randomSubnet6();
    const a1 = await ctr('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0), aliases: ['a1', '1a'] }]);
    expect(answers(await t.h.dig(a1, ['+short', 'aone', `@${gatewayOf(s)}`, 'AAAA']))).toEqual([ipIn(s, 0)]);
    expect(answers(await t.h.dig(a1, ['+short', 'testname6', `@${gatewayOf(s)}`, 'AAAA']))).toEqual(['2001:db8::53']);
  });

  it('a network name of 113 characters', async () => {
    const s = randomSubnet4();
    const long = `podman${'1'.repeat(107)}`;
    const a1 = await ctr('aone', [{ network: long, subnet: s, ip: ipIn(s, 0), aliases: ['a1', '1a'] }]);
    expect(answers(await t.h.dig(a1, ['+short', 'aone', `@${gatewayOf(s)}`]))).toEqual([ipIn(s, 0)]);
  });

  it('two containers on one network resolve each other', async () => {
    const s = randomSubnet4();
    const a1 = await ctr('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0), aliases: ['a1', '1a'] }]);
    const a2 = await ctr('atwo', [{ network: 'podman1', subnet: s, ip: ipIn(s, 1), aliases: ['a2', '2a'] }]);
    expect(answers(await t.h.dig(a1, ['+short', 'atwo', `@${gatewayOf(s)}`]))).toEqual([ipIn(s, 1)]);
    expect(answers(await t.h.dig(a2, ['+short', 'aone', `@${gatewayOf(s)}`]))).toEqual([ipIn(s, 0)]);
  });

  it('a host upstream on an IPv6 link-local address (fe80::...%dev)', async () => {
    await t.h.inHost(['sysctl', '-qw', 'net.ipv6.conf.default.accept_dad=0']);
    await t.h.inHost(['ip', 'link', 'add', 'lltest', 'type', 'bridge']);
    await t.h.inHost(['ip', 'link', 'set', 'lltest', 'up']);
    const addr = JSON.parse(String((await t.h.inHost(['ip', '-j', 'addr', 'show', 'lltest'])).stdout)) as { addr_info: { local: string; scope: string }[] }[];
    const ll = addr[0]!.addr_info.find((a) => a.scope === 'link')!.local;
    await t.h.dnsmasq(ll, ['/unique-name.local/192.168.0.1']);
    fs.writeFileSync(t.h.resolvConf, `nameserver ${ll}%lltest\n`);
    const s = randomSubnet4();
    const a1 = await ctr('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0) }]);
    expect(answers(await t.h.dig(a1, ['+short', 'unique-name.local', `@${gatewayOf(s)}`]))).toEqual(['192.168.0.1']);
  });

  it('a change of the host resolv.conf reaches the running server', async () => {
    await t.h.dnsmasq('127.1.1.2', ['/second-server.test/192.168.100.2']);
    const s = randomSubnet4();
    const a1 = await ctr('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0) }]);
    expect(answers(await t.h.dig(a1, ['+short', 'testname', `@${gatewayOf(s)}`]))).toEqual(['198.51.100.1']);
    expect(status(await t.h.dig(a1, ['second-server.test', `@${gatewayOf(s)}`]))).toBe('REFUSED');
    fs.writeFileSync(t.h.resolvConf, 'nameserver 127.1.1.2\n');
    let got: string[] = [];
    for (let i = 0; i < 40 && got[0] !== '192.168.100.2'; i++) {
      await new Promise((r) => setTimeout(r, 250));
      got = answers(await t.h.dig(a1, ['+short', 'second-server.test', `@${gatewayOf(s)}`]));
    }
    expect(got).toEqual(['192.168.100.2']);
  });

  it("an internal network (newer netavark's %int file): names answer, nothing is forwarded (NXDOMAIN)", async () => {
    // netavark 1.4 has no internal marker; the file is written as newer netavark writes it, and our
    // aardvark-dns started the way netavark starts it.
    const s = randomSubnet4();
    const a1 = await ctr('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0), aliases: ['a1', '1a'] }]);
    const dir = path.join(t.h.config, 'aardvark-dns');
    const text = fs.readFileSync(path.join(dir, 'podman1'), 'utf8');
    fs.writeFileSync(path.join(dir, 'podman1%int'), text.replace(/\n/, ' 127.0.0.1\n').replace(/ (\S+)\n$/, ' $1 127.0.0.1\n'));
    fs.rmSync(path.join(dir, 'podman1'));
    process.kill(t.h.aardvarkPid()!, 'SIGHUP');
    await new Promise((r) => setTimeout(r, 300));
    expect(answers(await t.h.dig(a1, ['+short', 'aone', `@${gatewayOf(s)}`]))).toEqual([ipIn(s, 0)]);
    expect(status(await t.h.dig(a1, ['testname', `@${gatewayOf(s)}`]))).toBe('NXDOMAIN');
    // Put netavark's file back, so its teardown finds it.
    fs.writeFileSync(path.join(dir, 'podman1'), text);
    fs.rmSync(path.join(dir, 'podman1%int'));
  });
});

/**
 * aone on podman1, bone on podman2, abtwo on both (200's and 300's topology), and what the isolated two see:
 * abtwo's address on their own network, nothing of the other one.
 */
async function isolatedAndShared() {
  const sa = randomSubnet4();
  const sb = randomSubnet4();
  const a1 = await ctr('aone', [{ network: 'podman1', subnet: sa, ip: ipIn(sa, 0) }]);
  const b1 = await ctr('bone', [{ network: 'podman2', subnet: sb, ip: ipIn(sb, 1) }]);
  const ab2 = await ctr('abtwo', [
    { network: 'podman1', subnet: sa, ip: ipIn(sa, 2) },
    { network: 'podman2', subnet: sb, ip: ipIn(sb, 3) },
  ]);
  const [ga, gb] = [`@${gatewayOf(sa)}`, `@${gatewayOf(sb)}`];
  expect(answers(await t.h.dig(a1, ['+short', 'abtwo', ga]))).toEqual([ipIn(sa, 2)]);
  expect(answers(await t.h.dig(a1, ['+short', 'bone', ga]))).toEqual([]);
  expect(answers(await t.h.dig(b1, ['+short', 'abtwo', gb]))).toEqual([ipIn(sb, 3)]);
  expect(answers(await t.h.dig(b1, ['+short', 'aone', gb]))).toEqual([]);
  return { sa, sb, ab2, ga, gb };
}

d('200: two networks', () => {
  it('containers on different networks: isolated; the host asking a gateway sees that network only', async () => {
    const sa = randomSubnet4();
    const sb = randomSubnet4();
    const a1 = await ctr('aone', [{ network: 'podman1', subnet: sa, ip: ipIn(sa, 0) }]);
    const b1 = await ctr('bone', [{ network: 'podman2', subnet: sb, ip: ipIn(sb, 1) }]);
    const [ga, gb] = [`@${gatewayOf(sa)}`, `@${gatewayOf(sb)}`];
    expect(status(await t.h.dig(a1, ['bone', ga]))).toBe('NXDOMAIN'); // forwarded: the upstream's NXDOMAIN
    expect(status(await t.h.dig(b1, ['aone', gb]))).toBe('NXDOMAIN');
    expect(answers(await t.h.dig(a1, ['+short', 'aone', ga]))).toEqual([ipIn(sa, 0)]);
    expect(answers(await t.h.dig(b1, ['+short', 'bone', gb]))).toEqual([ipIn(sb, 1)]);
    expect(answers(await t.h.dig('host', ['+short', 'aone', ga]))).toEqual([ipIn(sa, 0)]);
    expect(status(await t.h.dig('host', ['aone', gb]))).toBe('NXDOMAIN');
    expect(answers(await t.h.dig('host', ['+short', 'bone', gb]))).toEqual([ipIn(sb, 1)]);
    // The leak aardvark-dns 1.4 had: a container asking the other network's gateway gets nothing of it.
    expect(status(await t.h.dig(a1, ['bone', gb]))).toBe('NXDOMAIN');
  });

  it('two subnets with an isolated container each and one shared', async () => {
    const { sa, sb, ab2, ga, gb } = await isolatedAndShared();
    expect(answers(await t.h.dig(ab2, ['+short', 'aone', ga]))).toEqual([ipIn(sa, 0)]);
    expect(answers(await t.h.dig(ab2, ['+short', 'bone', gb]))).toEqual([ipIn(sb, 1)]);
    for (const g of [ga, gb]) expect(answers(await t.h.dig(ab2, ['+short', 'abtwo', g])).sort()).toEqual([ipIn(sa, 2), ipIn(sb, 3)].sort());
  });
});

d('300: three networks', () => {
  it('a container on two networks resolves both through either gateway, also as <name>.dns.podman', async () => {
    const { sa, sb, ab2, ga, gb } = await isolatedAndShared();
    for (const g of [ga, gb]) {
      expect(answers(await t.h.dig(ab2, ['+short', 'aone', g]))).toEqual([ipIn(sa, 0)]);
      expect(answers(await t.h.dig(ab2, ['+short', 'bone', g]))).toEqual([ipIn(sb, 1)]);
      expect(answers(await t.h.dig(ab2, ['+short', 'aone.dns.podman', g]))).toEqual([ipIn(sa, 0)]);
      expect(answers(await t.h.dig(ab2, ['+short', 'bone.dns.podman', g]))).toEqual([ipIn(sb, 1)]);
      expect(answers(await t.h.dig(ab2, ['+short', 'abtwo', g])).sort()).toEqual([ipIn(sa, 2), ipIn(sb, 3)].sort());
    }
  });

  it('network connect: two containers meet on a third network and see each other there only', async () => {
    const [sa, sb, sc] = [randomSubnet4(), randomSubnet4(), randomSubnet4()];
    const a1 = await ctr('aone', [{ network: 'podman1', subnet: sa, ip: ipIn(sa, 0) }]);
    const c1 = await ctr('cone', [{ network: 'podman3', subnet: sc, ip: ipIn(sc, 0) }]);
    await t.h.connect(a1, { network: 'podman2', subnet: sb, ip: ipIn(sb, 0), aliases: ['aone_nw'] });
    await t.h.connect(c1, { network: 'podman2', subnet: sb, ip: ipIn(sb, 1), aliases: ['cone_nw'] });
    const [ga, gb, gc] = [`@${gatewayOf(sa)}`, `@${gatewayOf(sb)}`, `@${gatewayOf(sc)}`];
    expect(answers(await t.h.dig(a1, ['+short', 'cone', gb]))).toEqual([ipIn(sb, 1)]);
    expect(answers(await t.h.dig(a1, ['+short', 'cone', ga]))).toEqual([ipIn(sb, 1)]);
    expect(answers(await t.h.dig(a1, ['+short', 'cone_nw', ga]))).toEqual([ipIn(sb, 1)]);
    expect(answers(await t.h.dig(c1, ['+short', 'aone', gb]))).toEqual([ipIn(sb, 0)]);
    expect(answers(await t.h.dig(c1, ['+short', 'aone', gc]))).toEqual([ipIn(sb, 0)]);
    expect(answers(await t.h.dig(c1, ['+short', 'aone_nw', gc]))).toEqual([ipIn(sb, 0)]);
  });

  it('network connect over IPv6: AAAA through the v6 gateway and through the v4 one', async () => {
    const [sa, sb, sc] = [randomSubnet4(), randomSubnet6(), randomSubnet6()];
    const a1 = await ctr('aone', [{ network: 'podman1', subnet: sa, ip: ipIn(sa, 0) }]);
    const c1 = await ctr('cone', [{ network: 'podman3', subnet: sc, ip: ipIn(sc, 0) }]);
    await t.h.connect(a1, { network: 'podman2', subnet: sb, ip: ipIn(sb, 0), aliases: ['aone_nw'] });
    await t.h.connect(c1, { network: 'podman2', subnet: sb, ip: ipIn(sb, 1), aliases: ['cone_nw'] });
    expect(answers(await t.h.dig(a1, ['+short', 'cone', `@${gatewayOf(sb)}`, 'AAAA']))).toEqual([ipIn(sb, 1)]);
    expect(answers(await t.h.dig(a1, ['+short', 'cone', `@${gatewayOf(sa)}`, 'AAAA']))).toEqual([ipIn(sb, 1)]);
  });
});

d('400: aliases', () => {
  it('aliases resolve like names', async () => {
    const s = randomSubnet4();
    const a1 = await ctr('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0), aliases: ['a1', '1a'] }]);
    const a2 = await ctr('atwo', [{ network: 'podman1', subnet: s, ip: ipIn(s, 1), aliases: ['a2', '2a'] }]);
    const g = `@${gatewayOf(s)}`;
    expect(answers(await t.h.dig(a1, ['+short', 'a2', g]))).toEqual([ipIn(s, 1)]);
    expect(answers(await t.h.dig(a1, ['+short', '2a', g]))).toEqual([ipIn(s, 1)]);
    expect(answers(await t.h.dig(a2, ['+short', 'a1', g]))).toEqual([ipIn(s, 0)]);
    expect(answers(await t.h.dig(a2, ['+short', '1a', g]))).toEqual([ipIn(s, 0)]);
  });
});

d('500: reverse lookups', () => {
  for (const family of [4, 6] as const) {
    it(`PTR over IPv${family}: the name and every alias, TTL 0, owner the question's name`, async () => {
      const s = family === 4 ? randomSubnet4() : randomSubnet6();
      const a1 = await ctr('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0), aliases: ['a1', '1a'] }]);
      const a2 = await ctr('atwo', [{ network: 'podman1', subnet: s, ip: ipIn(s, 1), aliases: ['a2', '2a'] }]);
      for (const [from, target, names] of [
        [a1, ipIn(s, 1), ['atwo', 'a2', '2a']],
        [a2, ipIn(s, 0), ['aone', 'a1', '1a']],
      ] as const) {
        const out = await t.h.dig(from, ['-x', target, `@${gatewayOf(s)}`]);
        const owner = family === 4 ? `${target.split('.').reverse().join('.')}.in-addr.arpa.` : /([0-9a-f]\.){30}d\.f\.ip6\.arpa\./.exec(out)?.[0];
        expect(owner).toBeDefined();
        const ptrs = answers(out).map((l) => l.split(/\s+/));
        expect(ptrs.map((p) => p[4]).sort()).toEqual(names.map((n) => `${n}.`).sort());
        for (const p of ptrs) expect([p[0], p[1], p[2], p[3]]).toEqual([owner, '0', 'IN', 'PTR']);
      }
    });
  }
});

d('600: errors', () => {
  for (const proto of ['udp', 'tcp'] as const) {
    it(`a ${proto} port already bound: netavark's setup shows why`, async () => {
      await t.h.stopUpstream(); // its 127.0.0.1:53 would keep the holder below from binding 0.0.0.0:53
      const s = randomSubnet4();
      const script = proto === 'udp' ? "require('dgram').createSocket('udp4').bind(53,'0.0.0.0')" : "require('net').createServer().listen(53,'0.0.0.0')";
      const holder = t.h.inHost([process.execPath, '-e', `${script};setTimeout(()=>{},60000)`], { timeoutMs: 60_000 });
      await new Promise((r) => setTimeout(r, 300));
      try {
        const { ctr: a1, result } = await t.h.container('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0) }], { expectOk: false });
        t.made.push(a1);
        // netavark 1.4 waits for aardvark-dns and shows its stderr; newer netavark also fails the setup.
        expect(String(result.stderr)).toContain(`failed to bind ${proto} listener on ${gatewayOf(s)}:53`);
        expect(t.h.aardvarkPid()).toBeUndefined();
      } finally {
        holder.kill('SIGKILL');
        await holder.catch(() => undefined);
      }
    });
  }
});

d('700: process start-up', () => {
  it('the server keeps no inherited descriptor: stdio on /dev/null', async () => {
    const marker = path.join(t.h.dir, 'fd-marker');
    const s = randomSubnet4();
    // The first setup starts the server: netavark has fd 9 open on the marker (no close-on-exec).
    const { ctr: a1 } = await t.h.container('aone', [{ network: 'podman1', subnet: s, ip: ipIn(s, 0) }], { fd9: marker });
    t.made.push(a1);
    const pid = t.h.aardvarkPid();
    expect(pid).toBeDefined();
    const fds = fs.readdirSync(`/proc/${pid}/fd`).map((f) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${f}`);
      } catch {
        return '';
      }
    });
    expect(fds).toContain('/dev/null');
    expect(fds.filter((f) => f.includes('fd-marker'))).toEqual([]);
    expect(answers(await t.h.dig(a1, ['+short', 'aone', `@${gatewayOf(s)}`]))).toEqual([ipIn(s, 0)]);
  });
});
