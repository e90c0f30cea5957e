// The overlay's data plane across three hosts on one machine: each host a netns with its underlay address
// on a bridge of the test (its own netns), a network bridge, a VXLAN device from src/overlay/vxlan.ts with
// static entries for the others' containers (no learning, no multicast), and a container netns. Checks: L2
// reach between containers on every pair of hosts, the overlay MTU, proxy ARP from the static entries, and
// isolation of another VNI. Everything is in netns of the test: deleting them removes it all.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyRemotes, createVxlan, overlayMtu, peerBatch, remoteBatch, vxlanBatch, type RemoteEndpoint } from '../../src/overlay/vxlan.js';
import { createTestNetns, type TestNetns } from '../helpers/netns.js';

const all: TestNetns[] = [];
const ns = async (): Promise<TestNetns> => {
  const n = await createTestNetns();
  all.push(n);
  return n;
};
const ip = (args: string[], netns?: TestNetns) => execa('ip', [...(netns ? ['-n', netns.name] : []), ...args]);

interface Host {
  h: TestNetns;
  underlay: string;
  containers: { c: TestNetns; ip: string; mac: string; vni: number }[];
}
const hosts: Host[] = [];

/** A container netns on host `host`'s bridge `bridge`: its eth0 with `addr` and `mac`, MTU of the overlay. */
async function container(host: Host, bridge: string, addr: string, mac: string, vni: number): Promise<void> {
  const c = await ns();
  const hostEnd = `c${host.containers.length}`;
  await ip(['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c.name], host.h);
  await ip(['link', 'set', hostEnd, 'master', bridge, 'mtu', String(overlayMtu()), 'up'], host.h);
  await ip(['link', 'set', 'eth0', 'address', mac, 'mtu', String(overlayMtu()), 'up'], c);
  await ip(['addr', 'add', `${addr}/24`, 'dev', 'eth0'], c);
  host.containers.push({ c, ip: addr, mac, vni });
}

beforeAll(async () => {
  const u = await ns();
  await ip(['link', 'add', 'ul', 'type', 'bridge'], u);
  await ip(['link', 'set', 'ul', 'up'], u);
  for (let i = 1; i <= 3; i++) {
    const h = await ns();
    const host: Host = { h, underlay: `192.168.77.${i}`, containers: [] };
    hosts.push(host);
    await ip(['link', 'add', `ul${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.name], u);
    await ip(['link', 'set', `ul${i}`, 'master', 'ul', 'up'], u);
    await ip(['addr', 'add', `${host.underlay}/24`, 'dev', 'eth0'], h);
    await ip(['link', 'set', 'eth0', 'up'], h);
    for (const [bridge, vni] of [['ovl', 4242], ['ovl2', 4243]] as const) {
      await ip(['link', 'add', bridge, 'type', 'bridge'], h);
      await ip(['link', 'set', bridge, 'up'], h);
      await createVxlan({ device: `vx${vni}`, vni, local: host.underlay, bridge }, { netns: h.name });
    }
    await container(host, 'ovl', `10.80.0.${10 + i}`, `02:42:0a:50:00:${(10 + i).toString(16).padStart(2, '0')}`, 4242);
  }
  // The other network (VNI 4243), in the same address range: one container on host 3, one on host 1.
  await container(hosts[2]!, 'ovl2', '10.80.0.99', '02:42:0a:50:00:63', 4243);
  await container(hosts[0]!, 'ovl2', '10.80.0.98', '02:42:0a:50:00:62', 4243);
  // What the store would say: every host learns the others' containers of each VNI.
  for (const host of hosts) {
    for (const vni of [4242, 4243]) {
      const remotes: RemoteEndpoint[] = hosts.filter((o) => o !== host).flatMap((o) => o.containers.filter((c) => c.vni === vni).map((c) => ({ vtep: o.underlay, mac: c.mac, ip: c.ip })));
      if (remotes.length > 0) await applyRemotes(`vx${vni}`, remotes, { netns: host.h.name });
    }
  }
}, 60_000);

afterAll(async () => {
  for (const n of all.reverse()) await n.destroy().catch(() => undefined);
  const left = String((await execa('ip', ['netns', 'list'])).stdout);
  for (const n of all) expect(left).not.toContain(n.name);
});

describe('VXLAN between hosts (static entries, no learning, no multicast)', () => {
  it('the batches say what Docker-style overlay devices need', () => {
    expect(vxlanBatch({ device: 'vx1', vni: 7, local: '192.0.2.1', bridge: 'br' })).toEqual([
      'link add vx1 type vxlan id 7 local 192.0.2.1 dstport 4789 nolearning proxy',
      'link set vx1 mtu 1450 master br',
      'link set vx1 type bridge_slave learning off',
      'link set br mtu 1450',
      'link set vx1 up',
    ]);
    expect(remoteBatch('vx1', { vtep: '192.0.2.2', mac: '02:42:0a:00:00:02', ip: '10.0.0.2' })).toEqual({
      bridge: ['fdb replace 02:42:0a:00:00:02 dev vx1 master static', 'fdb replace 02:42:0a:00:00:02 dev vx1 dst 192.0.2.2 self permanent'],
      ip: ['neigh replace 10.0.0.2 lladdr 02:42:0a:00:00:02 dev vx1 nud permanent'],
    });
    expect(peerBatch('vx1', '192.0.2.2', 'del')).toEqual(['fdb del 00:00:00:00:00:00 dev vx1 dst 192.0.2.2 self']);
    expect(() => vxlanBatch({ device: 'vx1', vni: 1 << 24, local: '192.0.2.1', bridge: 'br' })).toThrow(/VNI 16777216 is not in 1-16777215/);
    expect(() => remoteBatch('vx1', { vtep: '192.0.2.2', mac: 'nonsense', ip: '10.0.0.2' })).toThrow(/bad MAC/);
  });

  it('every container reaches every other of its network, on every host', async () => {
    for (const a of hosts) {
      for (const b of hosts) {
        if (a === b) continue;
        const from = a.containers[0]!;
        const to = b.containers[0]!;
        const r = await from.c.exec(['ping', '-c', '1', '-W', '2', to.ip]);
        expect(r.exitCode, `${from.ip} -> ${to.ip}: ${r.stdout}`).toBe(0);
      }
    }
  });

  it('ARP is answered from the static entries (proxy): the neighbour is there before any reply came back', async () => {
    const c1 = hosts[0]!.containers[0]!;
    const r = await c1.c.exec(['ip', 'neigh', 'show', hosts[1]!.containers[0]!.ip]);
    expect(String(r.stdout)).toContain(hosts[1]!.containers[0]!.mac);
  });

  it('the overlay MTU: 1450 bytes go whole, more are refused at the sender', async () => {
    const c1 = hosts[0]!.containers[0]!;
    const c2 = hosts[1]!.containers[0]!;
    expect((await c1.c.exec(['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', String(overlayMtu() - 28), c2.ip])).exitCode).toBe(0);
    const big = await c1.c.exec(['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', String(overlayMtu() - 27), c2.ip]);
    expect(big.exitCode).not.toBe(0);
    expect(String(big.stdout) + String(big.stderr)).toMatch(/message too long|mtu/i);
  });

  it('another VNI is another network: its containers reach each other across hosts, and nothing of this one', async () => {
    const other = hosts[0]!.containers.find((c) => c.vni === 4243)!;
    expect((await other.c.exec(['ping', '-c', '1', '-W', '2', '10.80.0.99'])).exitCode).toBe(0);
    const r = await hosts[0]!.containers[0]!.c.exec(['ping', '-c', '1', '-W', '1', '10.80.0.99']);
    expect(r.exitCode).not.toBe(0);
    expect((await other.c.exec(['ping', '-c', '1', '-W', '1', hosts[1]!.containers[0]!.ip])).exitCode).not.toBe(0);
  });
});
