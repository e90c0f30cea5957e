// Crash recovery: kill -9 of the daemon with containers running and with a `run` half done; a killed
// container process, a netns or a veth deleted by hand; dead state cleaned by `system prune`.
import { execa } from 'execa';
import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { leftovers, type DnsnetEnv } from '../helpers/dnsnet-env.js';
import type { FakeUpstream } from '../helpers/fake-upstream.js';
import {
  alive,
  checkConsistency,
  daemonPid,
  envWithUpstream,
  ipNetnsList,
  killDaemon,
  linkNames,
  lookup,
  netnsOf,
  pollUntil,
  processesOf,
  readState,
  sleep,
  type Ctr,
  type StateContainer,
} from './helpers.js';

let e: DnsnetEnv;
let upstream: FakeUpstream;

beforeEach(async () => {
  ({ e, upstream } = await envWithUpstream());
  await e.ok(['network', 'create', 'app']);
});

afterEach(async () => {
  await e.teardown();
  await upstream.close();
  expect(await leftovers(e)).toEqual([]);
  expect(processesOf(e)).toEqual([]);
});

const inspect = async (ref: string) => (await e.json<Ctr[]>(['inspect', ref]))[0]!;
const ipOf = async (ref: string, net = 'app') => (await inspect(ref)).NetworkSettings.Networks[net]!.IPAddress;
const answers = (ip: string) => ({ rcode: 'NOERROR', answers: [ip] });

describe('kill -9 of the daemon', () => {
  it('re-adopts running containers and serves their names again within a second', async () => {
    for (const n of ['keeper', 'asker']) await e.ok(['run', '-d', '--name', n, '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['run', '-d', '--name', 'legacy', 'sleep', 'infinity']); // default network
    const keeper = await inspect('keeper');
    const asker = await inspect('asker');
    const legacy = await inspect('legacy');
    const rounds = 3;
    const restoreMs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const old = await killDaemon(e);
      expect(alive(old)).toBe(false);
      // The containers outlive the daemon; their resolver sockets died with it.
      for (const c of [keeper, asker, legacy]) expect(alive(c.State.Pid)).toBe(true);
      expect(await lookup(asker.Id, 'keeper', { timeoutMs: 300 })).toBe('timeout');
      await e.ok(['ps']); // the CLI starts a new daemon; it re-adopts before it answers
      const ms = await pollUntil(async () => JSON.stringify(await lookup(asker.Id, 'keeper', { timeoutMs: 200 })) === JSON.stringify(answers(await ipOf('keeper'))), 1000, 0);
      expect(ms, 'names served again within a second').toBeGreaterThanOrEqual(0);
      restoreMs.push(ms);
      expect(daemonPid(e)).not.toBe(old);
    }
    for (const c of [keeper, asker, legacy]) {
      const now = await inspect(c.Name);
      expect(now.State).toMatchObject({ Status: 'running', Pid: c.State.Pid });
    }
    expect(await lookup(asker.Id, 'keeper', { tcp: true })).toEqual(answers(await ipOf('keeper')));
    expect(await checkConsistency(e)).toEqual([]);
    console.log(`[reliability] crash: ${rounds} kill -9 with 3 containers running; names served again ${restoreMs.join(', ')} ms after the restarted daemon answered`);
  });

  it('rolls back a run that was half done when the daemon died', { timeout: 120_000 }, async () => {
    await e.ok(['run', '-d', '--name', 'bystander', '--network', 'app', 'sleep', 'infinity']);
    const stages = ['record', 'netns', 'veth'] as const;
    const caught: string[] = [];
    for (const stage of stages) {
      let hit = false;
      for (let attempt = 0; attempt < 5 && !hit; attempt++) {
        const name = `half-${stage}-${attempt}`;
        const known = new Set(fs.readdirSync(`${e.env.DNSNET_ROOT}/containers`));
        const run = e.cli(['run', '-d', '--name', name, '--network', 'app', 'sleep', 'infinity']);
        // Wait for the chosen stage of this run, then kill the daemon at once.
        let rec: StateContainer | undefined;
        const deadline = Date.now() + 10_000;
        while (Date.now() < deadline) {
          const id = fs.readdirSync(`${e.env.DNSNET_ROOT}/containers`).find((d) => !known.has(d));
          if (id) {
            try {
              rec = JSON.parse(fs.readFileSync(`${e.env.DNSNET_ROOT}/containers/${id}/config.json`, 'utf8')) as StateContainer;
            } catch {
              rec = undefined;
            }
          }
          if (rec) {
            const ready =
              stage === 'record' ||
              (stage === 'netns' && fs.existsSync(`/run/netns/${netnsOf(rec.id)}`)) ||
              (stage === 'veth' && rec.endpoints.every((ep) => fs.existsSync(`/sys/class/net/${ep.hostVeth}`)));
            if (ready) break;
          }
          await new Promise((r) => setImmediate(r));
        }
        expect(rec, `the run of ${name} wrote no record`).toBeDefined();
        await killDaemon(e);
        const r = await run;
        const status = (JSON.parse(fs.readFileSync(`${e.env.DNSNET_ROOT}/containers/${rec!.id}/config.json`, 'utf8')) as StateContainer).state.status;
        await e.ok(['ps']); // restart
        if (status !== 'created') {
          // Too late: the run had finished; it is a normal container now. Try again.
          expect(r.exitCode).toBe(0);
          await e.ok(['rm', '-f', name]);
          continue;
        }
        hit = true;
        caught.push(`${stage} (attempt ${attempt + 1}, CLI exit ${r.exitCode})`);
        expect(r.exitCode).toBe(125);
        expect(String(r.stderr).trim().split('\n')).toHaveLength(1);
        // Rolled back: no record, no netns, no veth, the name is free again.
        expect(fs.existsSync(`${e.env.DNSNET_ROOT}/containers/${rec!.id}`)).toBe(false);
        expect(await ipNetnsList()).not.toContain(netnsOf(rec!.id));
        const links = await linkNames();
        expect(rec!.endpoints.map((ep) => ep.hostVeth).filter((v) => links.includes(v))).toEqual([]);
        expect(String(await e.ok(['ps', '-a', '--format', 'json']))).not.toContain(name);
        await e.ok(['run', '-d', '--name', name, '--network', 'app', 'sleep', 'infinity']);
        await e.ok(['rm', '-f', name]);
        // No socket helper was orphaned by the crash.
        await sleep(200);
        expect(String((await execa('pgrep', ['-af', 'socket-helper'], { reject: false })).stdout)).not.toContain(netnsOf(rec!.id));
      }
      expect(hit, `never caught a run at stage ${stage}`).toBe(true);
    }
    expect((await inspect('bystander')).State.Status).toBe('running');
    expect(await checkConsistency(e)).toEqual([]);
    console.log(`[reliability] crash: half-done runs rolled back at stages ${caught.join('; ')}`);
  });

  it('state files stay whole when the daemon dies in the middle of many writes', { timeout: 120_000 }, async () => {
    const kills = 5;
    let runs = 0;
    for (let k = 0; k < kills; k++) {
      const batch = Array.from({ length: 6 }, (_, i) => e.cli(['run', '-d', '--name', `w${k}x${i}`, '--network', 'app', 'sleep', 'infinity']));
      runs += batch.length;
      await sleep(150 + 100 * k);
      await killDaemon(e);
      await Promise.all(batch);
      // Every record parses (readState throws otherwise) and no temp file is left behind.
      await e.ok(['ps']);
      expect(readState(e).stray.join("; ")).toBe("");
      expect(await checkConsistency(e)).toEqual([]);
    }
    console.log(`[reliability] crash: ${kills} kill -9 during ${runs} concurrent runs; every record intact`);
  });
});

describe('faults while the daemon runs', () => {
  it('notices a killed container process, a netns deleted by hand and a veth deleted by hand', async () => {
    for (const n of ['victim', 'orphan', 'cut', 'asker']) await e.ok(['run', '-d', '--name', n, '--network', 'app', 'sleep', 'infinity']);
    await e.ok(['network', 'create', 'side']);
    await e.ok(['network', 'connect', 'side', 'cut']);
    const [victim, orphan, cut, asker] = await Promise.all(['victim', 'orphan', 'cut', 'asker'].map(inspect));
    const rec = (id: string) => readState(e).containers.find((c) => c.id === id)!;

    // A re-adopted container (not the daemon's child) killed from outside.
    await killDaemon(e);
    await e.ok(['ps']);
    process.kill(victim!.State.Pid, 'SIGKILL');
    expect(await pollUntil(async () => (await inspect('victim')).State.Status === 'exited', 5000, 100)).toBeGreaterThanOrEqual(0);
    expect(await ipNetnsList()).not.toContain(netnsOf(victim!.Id));
    expect(await lookup(asker!.Id, 'victim')).toMatchObject({ rcode: 'NXDOMAIN' });

    // A netns deleted by hand: the container has lost its network for good; dnsnet stops it and cleans up.
    const orphanVeth = rec(orphan!.Id).endpoints[0]!.hostVeth;
    await execa('ip', ['netns', 'delete', netnsOf(orphan!.Id)]);
    expect(await pollUntil(async () => (await inspect('orphan')).State.Status === 'exited', 5000, 100), 'netns deleted by hand is noticed').toBeGreaterThanOrEqual(0);
    expect(alive(orphan!.State.Pid)).toBe(false);
    expect(await linkNames()).not.toContain(orphanVeth);
    expect(await lookup(asker!.Id, 'orphan')).toMatchObject({ rcode: 'NXDOMAIN' });

    // A veth deleted by hand: that endpoint is gone; the container stays on its other network.
    const sideVeth = rec(cut!.Id).endpoints.find((ep) => ep.networkName === 'side')!.hostVeth;
    await execa('ip', ['link', 'delete', sideVeth]);
    expect(
      await pollUntil(async () => Object.keys((await inspect('cut')).NetworkSettings.Networks).join() === 'app', 5000, 100),
      'veth deleted by hand is noticed',
    ).toBeGreaterThanOrEqual(0);
    expect((await inspect('cut')).State.Status).toBe('running');
    expect(await e.ok(['exec', 'cut', 'cat', '/etc/hosts'])).not.toContain(rec(cut!.Id).endpoints.find((ep) => ep.networkName === 'side')?.ipv4 ?? 'none');
    expect(await lookup(asker!.Id, 'cut')).toEqual(answers(await ipOf('cut')));
    await e.ok(['network', 'rm', 'side']); // nothing holds it any more
    expect(await checkConsistency(e)).toEqual([]);
  });

  it('system prune removes what dead state left in the kernel', async () => {
    await e.ok(['run', '-d', '--name', 'ghost', '--network', 'app', 'sleep', 'infinity']);
    const ghost = await inspect('ghost');
    const veth = readState(e).containers[0]!.endpoints[0]!.hostVeth;
    // The daemon dies, the container dies while it is away, and its record is truncated.
    await killDaemon(e);
    process.kill(ghost.State.Pid, 'SIGKILL');
    const file = `${e.env.DNSNET_ROOT}/containers/${ghost.Id}/config.json`;
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').slice(0, 100));
    expect(String(await e.ok(['ps', '-a']))).not.toContain('ghost'); // the daemon skipped the corrupt record
    expect(fs.readFileSync(`${e.env.DNSNET_RUN}/daemon.log`, 'utf8')).toMatch(/skipping corrupt container record/);
    expect(await ipNetnsList()).toContain(netnsOf(ghost.Id)); // dead state in the kernel
    const out = await e.ok(['system', 'prune']);
    expect(out).toContain(netnsOf(ghost.Id));
    expect(await ipNetnsList()).not.toContain(netnsOf(ghost.Id));
    expect(await linkNames()).not.toContain(veth);
    fs.rmSync(`${e.env.DNSNET_ROOT}/containers/${ghost.Id}`, { recursive: true, force: true }); // the corrupt record is left for the user
    expect(await checkConsistency(e)).toEqual([]);
  });
});
