// Real bridges and a real nftables table (root): create, verify with ip -json / nft -j, remove, nothing left.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DnsnetError } from '../../src/errors.js';
import {
  applyRuleset,
  bridgeMac,
  checkRuleset,
  createBridge,
  deleteBridge,
  enableForwarding,
  hostTakenSubnets,
  linkExists,
  listLinks,
  renderTable,
} from '../../src/bridge/index.js';
import { chooseSubnet, ulaSubnet } from '../../src/ipam/index.js';
import { runIp, runNft } from '../../src/netns/run.js';
import type { NetworkRecord } from '../../src/state/types.js';
import { RULESET_CASES, network } from './cases.js';

const hex = (n: number) => randomBytes(n).toString('hex');
// Test-only /24s inside 10.213.0.0/16, skipping whatever the host (or another test) already uses.
const TEST_POOLS = Array.from({ length: 256 }, (_, i) => `10.213.${i}.0/24`);

let links: string[] = [];
let tables: string[] = [];

afterEach(async () => {
  for (const l of links) await execa('ip', ['link', 'delete', l], { reject: false });
  for (const t of tables) await execa('nft', ['delete', 'table', 'inet', t], { reject: false });
  const leftLinks = [];
  for (const l of links) if (await linkExists(l)) leftLinks.push(l);
  links = [];
  tables = [];
  expect(leftLinks).toEqual([]);
});

function testTable(): string {
  const t = `dnsnet_t${hex(4)}`;
  tables.push(t);
  return t;
}

async function testNetwork(name: string, taken: string[], over: Partial<NetworkRecord> = {}): Promise<NetworkRecord> {
  const subnet = chooseSubnet(taken, TEST_POOLS);
  if (!subnet) throw new Error('no free test subnet in 10.213.0.0/16');
  taken.push(subnet);
  const device = `dnt${hex(4)}`;
  links.push(device);
  return network({ id: hex(32), name, device, ipam: [{ subnet, gateway: subnet.replace(/0\/24$/, '1') }], ...over });
}

async function tableJson(table: string): Promise<{ nftables: Record<string, any>[] } | undefined> {
  const r = await execa('nft', ['-j', 'list', 'table', 'inet', table], { reject: false });
  return r.exitCode === 0 ? JSON.parse(r.stdout) : undefined;
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the bridge integration tests need root');
});

describe('bridges and the firewall table', () => {
  it('creates two networks, verifies them, removes one then the other, and leaves nothing', async () => {
    const taken = await hostTakenSubnets();
    const table = testTable();
    const app = await testNetwork('app', taken, { mtu: 1400 });
    const dual = await testNetwork('dual', taken, { enableIPv6: true });
    const v6 = ulaSubnet(`dnt-${hex(8)}`, taken); // a random ULA /64: cannot be the host's fd00::/64
    dual.ipam.push({ subnet: v6, gateway: v6.replace('/64', '1') });

    await createBridge(app);
    await createBridge(dual);
    await checkRuleset(table, [app, dual]);
    await applyRuleset(table, [app, dual]);

    const all = await listLinks();
    for (const net of [app, dual]) {
      const link = all.find((l) => l.ifname === net.device);
      expect(link).toMatchObject({ ifname: net.device, kind: 'bridge', up: true, mtu: net.mtu });
      const [addr] = JSON.parse((await runIp(['-json', 'addr', 'show', 'dev', net.device])) || '[]');
      const have = (addr.addr_info as { local: string; prefixlen: number; tentative?: boolean }[]).filter((a) => !a.local.startsWith('fe80'));
      const want = net.ipam.map((c) => `${c.gateway}/${c.subnet.split('/')[1]}`);
      expect(have.map((a) => `${a.local}/${a.prefixlen}`).sort()).toEqual(want.sort());
      expect(have.some((a) => a.tentative)).toBe(false); // nodad: usable at once
    }
    const hostNow = await hostTakenSubnets();
    expect(hostNow).toEqual(expect.arrayContaining([app.ipam[0]!.subnet, dual.ipam[0]!.subnet, v6]));

    const json = await tableJson(table);
    expect(json).toBeDefined();
    const items = json!.nftables;
    const set = items.find((i) => i.set?.name === 'bridges')?.set;
    expect([...set.elem].sort()).toEqual([app.device, dual.device].sort());
    const rules = items.filter((i) => i.rule).map((i) => i.rule);
    const masq = rules.filter((r) => r.chain === 'postrouting' && r.expr.some((e: object) => 'masquerade' in e));
    expect(masq.map((r) => r.comment).sort()).toEqual(['network app', 'network dual', 'network dual']);
    expect(JSON.stringify(masq)).toContain(v6.split('/')[0]);
    const drops = rules.filter((r) => r.chain === 'forward' && r.expr.some((e: object) => 'drop' in e));
    expect(drops.map((r) => r.comment).sort()).toEqual(['isolate network app', 'isolate network dual']);
    const chains = items.filter((i) => i.chain).map((i) => i.chain);
    expect(chains.find((c) => c.name === 'forward')).toMatchObject({ hook: 'forward', type: 'filter', prio: -1, policy: 'accept' });
    expect(chains.find((c) => c.name === 'postrouting')).toMatchObject({ hook: 'postrouting', type: 'nat', prio: 100 });

    // Applying the same list again is idempotent; removing one network removes exactly its rules.
    await applyRuleset(table, [app, dual]);
    await applyRuleset(table, [app]);
    await deleteBridge(dual.device);
    const after = (await tableJson(table))!.nftables;
    const comments = after.filter((i) => i.rule).map((i) => i.rule.comment).sort();
    expect(comments).toEqual(['isolate network app', 'network app']);
    expect(await linkExists(dual.device)).toBe(false);

    // The last one: no link, no table.
    await applyRuleset(table, []);
    await deleteBridge(app.device);
    await deleteBridge(app.device); // idempotent
    expect(await tableJson(table)).toBeUndefined();
    expect(await linkExists(app.device)).toBe(false);
    const { stdout } = await execa('nft', ['list', 'tables']);
    expect(stdout).not.toContain(table);
  });

  it('an internal network: drop rules both ways, no masquerade', async () => {
    const taken = await hostTakenSubnets();
    const table = testTable();
    const secret = await testNetwork('secret', taken, { internal: true });
    await createBridge(secret);
    await applyRuleset(table, [secret]);
    const rules = (await tableJson(table))!.nftables.filter((i) => i.rule).map((i) => i.rule);
    expect(rules.map((r) => r.comment).sort()).toEqual(['internal network secret: nothing enters', 'internal network secret: nothing leaves']);
    await applyRuleset(table, []);
    expect(await tableJson(table)).toBeUndefined();
  });

  it('the bridge keeps its own MAC when a port with a lower MAC joins (the gateway MAC never moves)', async () => {
    const taken = await hostTakenSubnets();
    const net = await testNetwork('mac', taken);
    await createBridge(net);
    const macOf = async (dev: string) => (await listLinks()).find((l) => l.ifname === dev)?.address;
    expect(await macOf(net.device)).toBe(bridgeMac(net.id));
    const port = `dnt${hex(4)}`;
    links.push(port);
    // 02:00:00:00:00:01 is below any 0a:... address: an unset bridge address would switch to it.
    await runIp(['link', 'add', port, 'address', '02:00:00:00:00:01', 'type', 'veth', 'peer', 'name', `${port}p`]);
    await runIp(['link', 'set', port, 'master', net.device, 'up']);
    expect(await macOf(net.device)).toBe(bridgeMac(net.id));
    await deleteBridge(net.device);
  });

  it('a device name that exists is a conflict and is left alone', async () => {
    const taken = await hostTakenSubnets();
    const net = await testNetwork('dup', taken);
    await runIp(['link', 'add', net.device, 'mtu', '1280', 'type', 'bridge']);
    const error = await createBridge(net).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DnsnetError);
    expect((error as DnsnetError).code).toBe('conflict');
    const link = (await listLinks()).find((l) => l.ifname === net.device);
    expect(link).toMatchObject({ mtu: 1280, up: false }); // untouched, not deleted
  });

  it('a batch that fails in the kernel after the link was made rolls it back and names the line', async () => {
    const taken = await hostTakenSubnets();
    const net = await testNetwork('broken', taken);
    net.ipam.push({ ...net.ipam[0]! }); // the same address twice: line 3 fails with EEXIST
    const error = await createBridge(net).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DnsnetError);
    expect((error as DnsnetError).code).toBe('kernel');
    const line = `addr add ${net.ipam[0]!.gateway}/24 brd + dev ${net.device}`;
    // The reason is the kernel's own text (extack on newer kernels, "RTNETLINK answers: File exists" on older).
    expect((error as DnsnetError).message.startsWith(`create bridge ${net.device} (line 3: ${line}): `)).toBe(true);
    expect((error as DnsnetError).message).toMatch(/already assigned|File exists/);
    expect(await linkExists(net.device)).toBe(false);
  });

  it('a batch line ip cannot parse (ip exits at once, naming no line) is rolled back too', async () => {
    const taken = await hostTakenSubnets();
    const net = await testNetwork('broken', taken);
    net.ipam[0]!.gateway = '10.213.0.300';
    const error = await createBridge(net).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'kernel', message: `create bridge ${net.device}: Error: any valid prefix is expected rather than "10.213.0.300/24".` });
    expect(await linkExists(net.device)).toBe(false);
  });

  it('a bad ruleset changes nothing and reports a kernel error', async () => {
    const table = testTable();
    const taken = await hostTakenSubnets();
    const net = await testNetwork('app', taken);
    await applyRuleset(table, [net]);
    const before = await tableJson(table);
    const error = await runNft(`add table inet ${table}\ndelete table inet ${table}\ntable inet ${table} { chain x { bogus } }\n`).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'kernel' });
    expect((error as Error).message).toMatch(/^nft -f -: .*Error/);
    expect(await tableJson(table)).toEqual(before); // the transaction was all or nothing
  });
});

describe('the golden rulesets', () => {
  it.each(RULESET_CASES)('%s is accepted by nft -c', async (name, nets) => {
    const table = `dnsnet_t${hex(4)}`; // check mode commits nothing, so no cleanup is owed
    const golden = await fs.readFile(path.join(import.meta.dirname, '../../fixtures/bridge', `${name}.nft`), 'utf8');
    const script = renderTable(table, nets);
    expect(script).toBe(golden.replaceAll('inet dnsnet', `inet ${table}`).replace('table inet dnsnet,', `table inet ${table},`));
    await runNft(script, { check: true });
    expect(await tableJson(table)).toBeUndefined();
  });
});

describe('helpers', () => {
  it('runIp failures are kernel errors with the first line of stderr', async () => {
    const error = await runIp(['link', 'show', 'dev', `dnt${hex(4)}`]).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'kernel' });
    expect((error as Error).message).toMatch(/^ip link show dev dnt[0-9a-f]{8}: Device "dnt[0-9a-f]{8}" does not exist\.$/);
  });

  it('enableForwarding writes 1 where needed and leaves 1 alone', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dnt-proc-'));
    try {
      await fs.mkdir(path.join(dir, 'net/ipv4'), { recursive: true });
      await fs.mkdir(path.join(dir, 'net/ipv6/conf/all'), { recursive: true });
      await fs.writeFile(path.join(dir, 'net/ipv4/ip_forward'), '0\n');
      await fs.writeFile(path.join(dir, 'net/ipv6/conf/all/forwarding'), '0\n');
      await enableForwarding(false, dir);
      expect(await fs.readFile(path.join(dir, 'net/ipv4/ip_forward'), 'utf8')).toBe('1\n');
      expect(await fs.readFile(path.join(dir, 'net/ipv6/conf/all/forwarding'), 'utf8')).toBe('0\n');
      await enableForwarding(true, dir);
      expect(await fs.readFile(path.join(dir, 'net/ipv6/conf/all/forwarding'), 'utf8')).toBe('1\n');
      await fs.rm(path.join(dir, 'net/ipv4/ip_forward'));
      await expect(enableForwarding(false, dir)).rejects.toMatchObject({ code: 'kernel' });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
