// 100 concurrent CLI operations (run -d, rm -f, network connect/disconnect, network create/rm,
// competing --ip requests) must end in a state where every record matches the kernel, addresses are
// distinct, names resolve as the records say, and removing everything leaves nothing behind.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { leftovers, type DnsnetEnv } from '../helpers/dnsnet-env.js';
import type { FakeUpstream } from '../helpers/fake-upstream.js';
import { checkConsistency, envWithUpstream, ipNetnsList, linkNames, netnsOf, nftTable, readState, resolveAll, type Net } from './helpers.js';

let e: DnsnetEnv;
let upstream: FakeUpstream;

beforeEach(async () => {
  ({ e, upstream } = await envWithUpstream());
});

afterEach(async () => {
  await e.teardown();
  await upstream.close();
  expect(await leftovers(e)).toEqual([]);
});

it('100 concurrent CLI operations end consistent, and removal leaks nothing', { timeout: 240_000 }, async () => {
  await e.ok(['network', 'create', 'n1']);
  await e.ok(['network', 'create', 'n2']);
  const n1 = (await e.json<Net[]>(['network', 'inspect', 'n1']))[0]!;
  const prefix = n1.IPAM.Config[0]!.Subnet.split('.').slice(0, 3).join('.'); // a /16: x.y.0
  // Victims for rm -f and containers to move between networks, made up front, 10 at a time.
  for (const group of ['r', 'k']) {
    const r = await Promise.all(Array.from({ length: 10 }, (_, i) => e.cli(['run', '-d', '--name', `${group}${i}`, '--network', 'n1', 'sleep', 'infinity'])));
    expect(r.map((x) => x.exitCode)).toEqual(Array(10).fill(0));
  }
  const everId = new Set(readState(e).containers.map((c) => c.id));
  const before = readState(e);

  type Op = { what: string; args: string[][]; mayFail?: boolean };
  const ops: Op[] = [];
  for (let i = 0; i < 40; i++) ops.push({ what: `run a${i}`, args: [['run', '-d', '--name', `a${i}`, '--network', i % 2 ? 'n1' : 'n2', 'sleep', 'infinity']] });
  for (let i = 0; i < 10; i++) ops.push({ what: `rm r${i}`, args: [['rm', '-f', `r${i}`]] });
  for (let i = 0; i < 10; i++) ops.push({ what: `connect k${i}`, args: [['network', 'connect', '--alias', `moved${i}`, 'n2', `k${i}`]] });
  for (let i = 0; i < 10; i++) ops.push({ what: `disconnect k${i}`, args: [['network', 'disconnect', 'n1', `k${i}`]] });
  for (let i = 0; i < 10; i++) ops.push({ what: `create+rm x${i}`, args: [['network', 'create', `x${i}`], ['network', 'rm', `x${i}`]] });
  // 5 pairs asking for the same address: exactly one of each pair may win.
  for (let i = 0; i < 10; i++) ops.push({ what: `run ip${i}`, args: [['run', '-d', '--name', `ip${i}`, '--network', 'n1', '--ip', `${prefix}.${200 + (i >> 1)}`, 'sleep', 'infinity']], mayFail: true });
  expect(ops.reduce((n, op) => n + op.args.length, 0)).toBe(100);

  const results = await Promise.all(
    ops.map(async (op) => {
      const out: { what: string; code: number | undefined; stderr: string; id?: string }[] = [];
      for (const args of op.args) {
        const r = await e.cli(args, { timeout: 180_000 });
        out.push({ what: `${op.what}: ${args.join(' ')}`, code: r.exitCode, stderr: String(r.stderr), ...(args[0] === 'run' ? { id: String(r.stdout).trim() } : {}) });
      }
      return { op, out };
    }),
  );
  for (const { out } of results) for (const o of out) if (o.id) everId.add(o.id);
  const unexpected = results.flatMap(({ op, out }) => out.filter((o) => o.code !== 0 && !op.mayFail).map((o) => `${o.what} -> ${o.code}: ${o.stderr}`));
  expect(unexpected).toEqual([]);
  // Failures that are allowed must be clean: one line, exit 125, the address conflict named.
  const ipRuns = results.filter(({ op }) => op.mayFail).map(({ out }) => out[0]!);
  for (let p = 0; p < 5; p++) {
    const pair = [ipRuns[2 * p]!, ipRuns[2 * p + 1]!];
    expect(pair.map((o) => o.code).sort(), JSON.stringify(pair)).toEqual([0, 125]);
    const loser = pair.find((o) => o.code === 125)!;
    expect(loser.stderr.trim().split('\n')).toHaveLength(1);
    expect(loser.stderr).toMatch(new RegExp(`${prefix.replace(/\./g, '\\.')}\\.${200 + p}`));
  }

  // The records agree with each other and with the kernel.
  expect(await checkConsistency(e)).toEqual([]);
  const state = readState(e);
  const names = state.containers.map((c) => c.name).sort();
  const want = [...Array.from({ length: 40 }, (_, i) => `a${i}`), ...Array.from({ length: 10 }, (_, i) => `k${i}`)];
  expect(names.filter((n) => !n.startsWith('ip'))).toEqual(want.sort());
  expect(names.filter((n) => n.startsWith('ip'))).toHaveLength(5);
  expect(state.networks.map((n) => n.name).sort()).toEqual(['bridge', 'host', 'n1', 'n2', 'none']);
  for (const k of state.containers.filter((c) => c.name.startsWith('k'))) expect(k.endpoints.map((ep) => ep.networkName)).toEqual(['n2']);
  // Removed containers and networks left nothing in the kernel.
  const removedIds = before.containers.filter((c) => c.name.startsWith('r')).map((c) => c.id);
  const ns = await ipNetnsList();
  expect(removedIds.map(netnsOf).filter((n) => ns.includes(n))).toEqual([]);
  const links = await linkNames();
  const removedVeths = before.containers.flatMap((c) => (c.name.startsWith('r') ? c.endpoints.map((ep) => ep.hostVeth) : []));
  expect(removedVeths.filter((v) => links.includes(v))).toEqual([]);

  // The resolver agrees with the records: from a container on n2, every n2 name (and k aliases) resolves
  // to its recorded address; n1-only names and removed ones do not exist.
  const asker = state.containers.find((c) => c.name === 'a0')!;
  const onN2 = state.containers.filter((c) => c.endpoints.some((ep) => ep.networkName === 'n2'));
  const notOnN2 = state.containers.filter((c) => !c.endpoints.some((ep) => ep.networkName === 'n2'));
  const query = [...onN2.map((c) => c.name), ...Array.from({ length: 10 }, (_, i) => `moved${i}`), ...notOnN2.map((c) => c.name), ...Array.from({ length: 10 }, (_, i) => `r${i}`)];
  const answers = await resolveAll(asker.id, query);
  const wrong: string[] = [];
  for (const c of onN2) {
    const ip = c.endpoints.find((ep) => ep.networkName === 'n2')!.ipv4;
    if (JSON.stringify(answers[c.name]) !== JSON.stringify({ rcode: 'NOERROR', answers: [ip] })) wrong.push(`${c.name}: ${JSON.stringify(answers[c.name])}, want ${ip}`);
  }
  for (let i = 0; i < 10; i++) {
    const ip = state.containers.find((c) => c.name === `k${i}`)!.endpoints[0]!.ipv4;
    if (JSON.stringify(answers[`moved${i}`]) !== JSON.stringify({ rcode: 'NOERROR', answers: [ip] })) wrong.push(`moved${i}: ${JSON.stringify(answers[`moved${i}`])}`);
  }
  for (const n of [...notOnN2.map((c) => c.name), ...Array.from({ length: 10 }, (_, i) => `r${i}`)]) {
    if ((answers[n] as { rcode?: string })?.rcode !== 'NXDOMAIN') wrong.push(`${n}: ${JSON.stringify(answers[n])}, want NXDOMAIN`);
  }
  expect(wrong).toEqual([]);
  console.log(`[reliability] concurrency: ${ops.length} operations (100 CLI calls), ${state.containers.length} containers and ${state.networks.length} networks at the end, ${ipRuns.filter((o) => o.code === 125).length} --ip conflicts refused, ${query.length} lookups checked`);

  // Everything removed concurrently too: nothing of this root stays in the kernel.
  const veths = state.containers.flatMap((c) => c.endpoints.map((ep) => ep.hostVeth));
  const devices = state.networks.filter((n) => !n.isDefault && n.driver === 'bridge').map((n) => n.device);
  const rms = await Promise.all(state.containers.map((c) => e.cli(['rm', '-f', c.name], { timeout: 180_000 })));
  expect(rms.filter((r) => r.exitCode !== 0).map((r) => String(r.stderr))).toEqual([]);
  await e.ok(['network', 'rm', 'n1', 'n2']);
  const nsAfter = await ipNetnsList();
  expect([...everId].map(netnsOf).filter((n) => nsAfter.includes(n))).toEqual([]);
  const linksAfter = await linkNames();
  expect([...veths, ...devices].filter((l) => linksAfter.includes(l))).toEqual([]);
  const table = await nftTable(e.table);
  for (const d of devices) expect(table).not.toContain(d);
  expect(readState(e).containers).toEqual([]);
});
