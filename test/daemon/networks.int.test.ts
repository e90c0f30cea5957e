// Networks end to end through the real CLI and daemon: IPAM, bridge, nftables, bad input, cleanup.
import { execa } from 'execa';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostTakenSubnets } from '../../src/bridge/device.js';
import { DEFAULT_POOLS } from '../../src/ipam/index.js';
import { overlaps, parseCidrLoose } from '../../src/ip/index.js';
import { createDnsnetEnv, expectRefused, leftovers, type DnsnetEnv } from '../helpers/dnsnet-env.js';

interface Net {
  Name: string;
  Id: string;
  Internal: boolean;
  EnableIPv6: boolean;
  IPAM: { Config: { Subnet: string; Gateway: string; IPRange?: string }[] };
  Options: Record<string, string>;
  Containers: Record<string, unknown>;
}

let e: DnsnetEnv;
const made: string[] = [];

beforeEach(async () => {
  e = await createDnsnetEnv();
});

afterEach(async () => {
  const devices = made.splice(0);
  await e.teardown();
  expect(await leftovers(e, devices)).toEqual([]);
});

async function inspect(name: string): Promise<Net> {
  const [net] = await e.json<Net[]>(['network', 'inspect', name]);
  made.push(net!.Options['com.docker.network.bridge.name']!);
  return net!;
}

describe('network create / inspect / rm', () => {
  it('gives a free pool subnet, a bridge holding the gateway, and nftables rules; rm removes them', async () => {
    const id = (await e.ok(['network', 'create', 'app'])).trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const net = await inspect('app');
    const cfg = net.IPAM.Config[0]!;
    expect(cfg.Subnet).toMatch(/^(172\.(1[7-9]|2\d|3[01])\.0\.0\/16|192\.168\.\d+\.0\/20)$/);
    expect(cfg.Gateway).toBe(cfg.Subnet.replace(/0\/\d+$/, '1'));
    const dev = net.Options['com.docker.network.bridge.name']!;
    expect(dev).toBe(`dn-${id.slice(0, 12)}`);

    const link = JSON.parse(String((await execa('ip', ['-d', '-j', 'addr', 'show', 'dev', dev])).stdout))[0];
    expect(link.linkinfo.info_kind).toBe('bridge');
    expect(link.addr_info.map((a: { local: string }) => a.local)).toContain(cfg.Gateway);
    const rules = String((await execa('nft', ['list', 'table', 'inet', e.table])).stdout);
    expect(rules).toContain(cfg.Subnet);
    expect(rules).toContain('masquerade');
    expect(rules).toContain(dev);

    const second = await (async () => {
      await e.ok(['network', 'create', 'second']);
      return inspect('second');
    })();
    expect(second.IPAM.Config[0]!.Subnet).not.toBe(cfg.Subnet);

    await e.ok(['network', 'rm', 'app', 'second']);
    const links = String((await execa('ip', ['-o', 'link'])).stdout);
    expect(links).not.toContain(dev);
    const after = String((await execa('nft', ['list', 'table', 'inet', e.table], { reject: false })).stdout);
    expect(after).not.toContain(cfg.Subnet);
  });

  it('lists the default network and honours --subnet, --gateway, --ip-range, --internal, mtu and --ipv6', async () => {
    const ls = (await e.ok(['network', 'ls', '--format', 'json'])).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Net);
    expect(ls.map((n) => n.Name)).toContain('bridge');
    await e.ok(['network', 'create', '--subnet', '10.213.7.0/24', '--gateway', '10.213.7.254', '--ip-range', '10.213.7.128/25', '--internal', '-o', 'mtu=1400', '--ipv6', 'custom']);
    const net = await inspect('custom');
    expect(net.IPAM.Config[0]).toEqual({ Subnet: '10.213.7.0/24', Gateway: '10.213.7.254', IPRange: '10.213.7.128/25' });
    expect(net.IPAM.Config[1]!.Subnet).toMatch(/^fd[0-9a-f]{2}:[0-9a-f:]+\/64$/);
    expect(net.Internal).toBe(true);
    expect(net.EnableIPv6).toBe(true);
    const dev = net.Options['com.docker.network.bridge.name']!;
    const link = JSON.parse(String((await execa('ip', ['-j', 'link', 'show', 'dev', dev])).stdout))[0];
    expect(link.mtu).toBe(1400);
  });

  it.each([
    [['network', 'create', '--subnet', '10.213.0.0/33', 'xx'], /invalid subnet/],
    [['network', 'create', '--subnet', '10.213.0.0/24', '--gateway', '10.214.0.1', 'xx'], /gateway/],
    [['network', 'create', 'bad name'], /invalid network name/],
    [['network', 'create', 'bridge'], /already exists/],
    [['network', 'rm', 'nosuch'], /no such network/],
    [['network', 'rm', 'bridge'], /pre-defined/],
    [['network', 'create', '-o', 'color=red', 'xx'], /unknown network option/],
  ])('refuses %j with one line and exit 125', async (args, why) => {
    expectRefused(await e.cli(args), why);
  });

  it('takes the 31 default subnets (the default network counts) and refuses the next one clearly, changing nothing', async () => {
    await e.ok(['network', 'ls']); // the daemon and the default network exist from the first use
    // Pools the host already holds (routes, addresses: the default network's bridge among them) are
    // skipped; on a clean host that is only the default network's, so 30 user networks fit, as in Docker.
    const held = await hostTakenSubnets();
    const free = DEFAULT_POOLS.filter((p) => !held.some((h) => overlaps(parseCidrLoose(h), parseCidrLoose(p))));
    const names = free.map((_, i) => `pool${i + 1}`);
    for (const name of names) {
      const r = await e.cli(['network', 'create', name]);
      expect(r.exitCode, `${name}: ${String(r.stderr)}`).toBe(0);
    }
    const subnets = new Set<string>();
    for (const name of names) subnets.add((await inspect(name)).IPAM.Config[0]!.Subnet);
    expect([...subnets].sort()).toEqual([...free].sort());
    const before = String((await execa('nft', ['list', 'table', 'inet', e.table])).stdout);
    expectRefused(await e.cli(['network', 'create', 'one-too-many']), /no free subnet in the default pools: all 31 overlap .*; use --subnet/);
    expect(String((await execa('nft', ['list', 'table', 'inet', e.table])).stdout)).toBe(before);
    expect(String((await e.cli(['network', 'ls', '-q'])).stdout).trim().split('\n')).toHaveLength(names.length + 3); // + bridge, host, none
  }, 120_000);

  it('refuses an overlapping --subnet and changes nothing', async () => {
    await e.ok(['network', 'create', '--subnet', '10.213.8.0/24', 'one']);
    await inspect('one');
    const before = await e.ok(['network', 'ls', '-q']);
    const r = await e.cli(['network', 'create', '--subnet', '10.213.8.128/25', 'two']);
    expect(r.exitCode).toBe(125);
    expect(String(r.stderr)).toMatch(/overlap/);
    expect(await e.ok(['network', 'ls', '-q'])).toBe(before);
  });

  it('a second daemon on the same roots refuses to start', async () => {
    await e.ok(['network', 'ls']);
    const r = await e.cli(['daemon']);
    expect(r.exitCode).toBe(125);
    expect(String(r.stderr)).toMatch(/another dnsnet daemon/);
  });

  it('system prune removes a bridge whose record was lost, and only links of this root', async () => {
    await e.ok(['network', 'create', 'lost']);
    const net = await inspect('lost');
    const dev = net.Options['com.docker.network.bridge.name']!;
    const alias = JSON.parse(String((await execa('ip', ['-j', '-d', 'link', 'show', 'dev', dev])).stdout))[0].ifalias;
    expect(alias).toMatch(/^dnsnet:[0-9a-f]{8}$/);
    // The daemon goes away and the record with it (a disk fault, a careless rm).
    const pid = Number(fs.readFileSync(`${e.env.DNSNET_RUN}/dnsnet.pid`, 'utf8'));
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && fs.existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 50));
    fs.rmSync(`${e.env.DNSNET_ROOT}/networks/${net.Id}.json`);
    expect(await e.ok(['system', 'prune'])).toContain(dev);
    const links = String((await execa('ip', ['-o', 'link'])).stdout);
    expect(links).not.toContain(`${dev}:`);
    expect(links).toContain(`${e.defaultBridge}:`); // the default network's bridge is still owned
  });

  it("system prune removes the netns of a container whose record was lost, an empty stray one, and no other root's", async () => {
    const other = await createDnsnetEnv();
    const stray = `dnsnet-${crypto.randomBytes(6).toString('hex')}`;
    try {
      await e.ok(['network', 'create', 'app']);
      const lostId = (await e.ok(['run', '-d', '--name', 'lost', '--network', 'app', 'sleep', 'infinity'])).trim();
      const otherId = (await other.ok(['run', '-d', '--name', 'keep', 'sleep', 'infinity'])).trim();
      await execa('ip', ['netns', 'add', stray]); // empty: nothing inside, no process
      // The daemon and the container die, and the container's whole record with them.
      const [ctr] = await e.json<{ State: { Pid: number } }[]>(['inspect', 'lost']);
      const pid = Number(fs.readFileSync(`${e.env.DNSNET_RUN}/dnsnet.pid`, 'utf8'));
      process.kill(pid, 'SIGKILL');
      process.kill(ctr!.State.Pid, 'SIGKILL');
      for (let i = 0; i < 100 && (fs.existsSync(`/proc/${pid}`) || fs.existsSync(`/proc/${ctr!.State.Pid}`)); i++) await new Promise((r) => setTimeout(r, 50));
      fs.rmSync(`${e.env.DNSNET_ROOT}/containers/${lostId}`, { recursive: true });
      const out = await e.ok(['system', 'prune']);
      expect(out).toContain(`dnsnet-${lostId.slice(0, 12)}`);
      expect(out).toContain(stray);
      expect(fs.existsSync(`/run/netns/dnsnet-${lostId.slice(0, 12)}`)).toBe(false);
      expect(fs.existsSync(`/run/netns/${stray}`)).toBe(false);
      expect(fs.existsSync(`/run/netns/dnsnet-${otherId.slice(0, 12)}`)).toBe(true); // another root's container
      expect((await other.cli(['exec', 'keep', 'true'])).exitCode).toBe(0);
    } finally {
      await execa('ip', ['netns', 'delete', stray], { reject: false });
      await other.teardown();
      expect(await leftovers(other)).toEqual([]);
    }
  });
});
