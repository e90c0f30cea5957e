// Overlay addresses claimed in a real 3-member etcd (src/cluster/claims.ts): three hosts claiming at once
// never share an address, --ip names its holder, a dead host's claims go with its lease, and a host that
// comes back gets back what is still free and is refused what was taken meanwhile.
import { describe, expect, it } from 'vitest';
import { claimAddress, claimedAddresses, reclaimAddress, releaseAddress, type ClaimOwner } from '../../src/cluster/claims.js';
import { HAVE_ETCD, etcdClusterPerFile } from '../helpers/etcd.js';

const d = HAVE_ETCD ? describe : describe.skip;
if (!HAVE_ETCD) console.log('skipped: the address-claim tests need /usr/bin/etcd (scripts/setup.sh installs etcd-server, no service started)');

const e = etcdClusterPerFile();

/** A host: its client (on its own member) and a lease of its own. */
async function host(i: number, ttl = 10): Promise<ClaimOwner> {
  const etcd = e.hosts[i % 3]!;
  return { etcd, prefix: '/dnsnet-test/', host: `192.168.77.${i + 1}`, lease: await etcd.grant(ttl) };
}

const config = { subnet: '10.90.0.0/24', gateway: '10.90.0.1' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

d('overlay address claims', () => {
  it('3 hosts x 20 concurrent claims on one network: 60 addresses, no two alike', async () => {
    const hosts = await Promise.all([0, 1, 2].map((i) => host(i)));
    const claims = await Promise.all(hosts.flatMap((h, i) => Array.from({ length: 20 }, (_, k) => claimAddress(h, 'net1', config, `c${i}-${k}`.padEnd(64, '0')))));
    const ips = claims.map((c) => c.ip);
    expect(new Set(ips).size).toBe(60);
    expect(ips).not.toContain('10.90.0.1'); // the gateway
    expect(ips).not.toContain('10.90.0.0');
    const held = await claimedAddresses(hosts[0]!, 'net1');
    expect(held.size).toBe(60);
    // Released, a claim can be made again; a stale release (an old revision) takes nothing.
    expect(await releaseAddress(hosts[0]!, 'net1', claims[0]!)).toBe(true);
    expect(await releaseAddress(hosts[0]!, 'net1', claims[0]!)).toBe(false);
    const again = await claimAddress(hosts[1]!, 'net1', config, 'x'.repeat(64));
    expect(again.ip).toBe(claims[0]!.ip);
    expect(await releaseAddress(hosts[0]!, 'net1', claims[0]!)).toBe(false); // host 1's claim stays
    expect((await claimedAddresses(hosts[0]!, 'net1')).get(again.ip)?.host).toBe('192.168.77.2');
  });

  it('--ip: a held address is refused, naming its holder; a free one is given', async () => {
    const [a, b] = await Promise.all([host(0), host(1)]);
    await claimAddress(a, 'net2', config, 'a'.repeat(64), '10.90.0.50');
    await expect(claimAddress(b, 'net2', config, 'b'.repeat(64), '10.90.0.50')).rejects.toThrow('address 10.90.0.50 is already in use by aaaaaaaaaaaa on host 192.168.77.1');
    await expect(claimAddress(b, 'net2', config, 'b'.repeat(64), '10.91.0.5')).rejects.toThrow('address 10.91.0.5 is not in subnet 10.90.0.0/24');
    expect((await claimAddress(b, 'net2', config, 'b'.repeat(64), '10.90.0.51')).ip).toBe('10.90.0.51');
  });

  it("a dead host's claims go with its lease; back, it gets what is free and is refused what was taken", async () => {
    const dead = await host(2, 1); // a 1 s lease it will not renew
    const live = await host(0);
    const mine = await Promise.all(['10.90.0.20', '10.90.0.21'].map((ip, k) => claimAddress(dead, 'net3', config, `d${k}`.padEnd(64, '0'), ip)));
    for (let i = 0; i < 40 && (await claimedAddresses(live, 'net3')).size > 0; i++) await sleep(100);
    expect((await claimedAddresses(live, 'net3')).size).toBe(0);
    // Meanwhile another host takes one of them.
    await claimAddress(live, 'net3', config, 'l'.repeat(64), '10.90.0.20');
    // The host is back, with a new lease: it re-claims both.
    const back: ClaimOwner = { ...dead, lease: await dead.etcd.grant(10) };
    expect(await reclaimAddress(back, 'net3', mine[0]!.ip, 'd0'.padEnd(64, '0'))).toBeUndefined();
    expect((await reclaimAddress(back, 'net3', mine[1]!.ip, 'd1'.padEnd(64, '0')))?.ip).toBe('10.90.0.21');
    const held = await claimedAddresses(live, 'net3');
    expect([...held.entries()].map(([ip, v]) => [ip, v.host]).sort()).toEqual([
      ['10.90.0.20', '192.168.77.1'],
      ['10.90.0.21', '192.168.77.3'],
    ]);
  });

  it('a claim still held under an earlier lease of the same host moves to its new lease', async () => {
    const h = await host(1);
    const c = await claimAddress(h, 'net4', config, 'e'.repeat(64));
    const renewed: ClaimOwner = { ...h, lease: await h.etcd.grant(10) };
    expect((await reclaimAddress(renewed, 'net4', c.ip, 'e'.repeat(64)))?.ip).toBe(c.ip);
    await h.etcd.revoke(h.lease); // the old lease ends: the claim stays, on the new one
    expect((await claimedAddresses(h, 'net4')).get(c.ip)?.host).toBe('192.168.77.2');
    expect(await reclaimAddress(renewed, 'net4', c.ip, 'f'.repeat(64))).toBeUndefined(); // not the same container
  });
});
