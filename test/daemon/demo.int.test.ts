// `dnsnet demo` end to end (root): it passes, and it leaves nothing behind, also when Ctrl-C stops it
// half-way. The demo picks its own roots under $TMPDIR; the test points TMPDIR at a directory of its
// own, so it knows the state root and hence every name the demo's daemon can have used.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { ownerTag, tableName } from '../../src/state/kernel-names.js';
import { CLI } from '../helpers/dnsnet-env.js';

interface DemoRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  stateRoot: string | undefined;
}

let tmp: string | undefined;

afterEach(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
});

/** Runs the demo; with `interruptAt`, sends SIGINT once the output matches it. */
function runDemo(interruptAt?: RegExp): Promise<DemoRun> {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dnsnet-demotest-'));
  const dir = tmp;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'demo'], { env: { ...process.env, TMPDIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stateRoot: string | undefined;
    let sent = false;
    const onOutput = (d: Buffer) => {
      out += d.toString();
      // The demo makes its directory before its first line of output.
      if (!stateRoot) {
        const demoDir = fs.readdirSync(dir).find((n) => n.startsWith('dnsnet-demo-'));
        if (demoDir) stateRoot = path.join(dir, demoDir, 'state');
      }
      if (interruptAt && !sent && interruptAt.test(out)) {
        sent = true;
        child.kill('SIGINT');
      }
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, stateRoot });
    });
  });
}

/** Everything of the demo's root still in the kernel, in /proc or on disk. */
async function leftovers(run: DemoRun): Promise<string[]> {
  const stateRoot = run.stateRoot!;
  const found: string[] = [];
  const tag = ownerTag(stateRoot);
  const links = String((await execa('ip', ['-o', 'link', 'show'], { reject: false })).stdout);
  for (const line of links.split('\n')) if (line.includes(`alias ${tag}`) || /: dndemo[0-9a-f]+[:@]/.test(line)) found.push(`link ${line.split(':')[1]?.trim()}`);
  // Netns of the containers it ran: `run -d` prints their IDs.
  for (const id of run.out.match(/\b[0-9a-f]{64}\b/g) ?? []) if (fs.existsSync(`/run/netns/dnsnet-${id.slice(0, 12)}`)) found.push(`netns dnsnet-${id.slice(0, 12)}`);
  const tables = String((await execa('nft', ['list', 'tables'], { reject: false })).stdout);
  if (tables.includes(tableName(stateRoot))) found.push(`table ${tableName(stateRoot)}`);
  for (const entry of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      // The daemon and its helpers carry the root in their environment (a process title can be cut short).
      if (fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`DNSNET_ROOT=${stateRoot}`)) found.push(`process ${entry}`);
    } catch {
      // gone meanwhile
    }
  }
  if (fs.readdirSync(path.dirname(path.dirname(stateRoot))).length > 0) found.push(`files under ${path.dirname(path.dirname(stateRoot))}`);
  return found;
}

describe('dnsnet demo', () => {
  it('passes, and leaves no namespace, device, rule, process or file behind', async () => {
    const run = await runDemo();
    expect(run.out).toContain('demo passed');
    expect(run.out).not.toContain('FAILED');
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/ok: tomcat82 pings tomcat81 by name/);
    expect(run.out).toMatch(/ok: legacy82 cannot resolve legacy81/);
    expect(run.out).toMatch(/ok: now answered by 127\.53\.\d+\.2/);
    expect(run.stateRoot).toBeDefined();
    expect(await leftovers(run)).toEqual([]);
  }, 120_000);

  it('cleans up after Ctrl-C in the middle of a run', async () => {
    // Interrupted once tomcat81 runs and the foreground tomcat82 is on its way.
    const run = await runDemo(/\$ dnsnet run --rm --name tomcat82/);
    expect(run.out).toContain('demo interrupted');
    expect(run.code).toBe(130);
    expect(run.out).not.toContain('demo passed');
    expect(run.stateRoot).toBeDefined();
    expect(await leftovers(run)).toEqual([]);
  }, 120_000);
});
