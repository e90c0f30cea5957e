// Containers' processes: spawn the detached ones, see every exit (a child's exit event, the CLI's report,
// a poll for the ones that are not our children), wait for one, signal one; and notice a netns or veth
// deleted by hand. It knows pids, not sandboxes: exits and lost sandboxes go up to the engine.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { DnsnetError } from '../errors.js';
import { linkNames } from '../netns/links.js';
import { netnsPath } from '../state/kernel-names.js';
import { netnsKind } from '../state/modes.js';
import type { ContainerRecord, ContainerState } from '../state/types.js';
import { isAlive, readStartTime } from './proc.js';

const POLL_MS = 250;
const FOREGROUND_REPORT_GRACE_MS = 2_000;
const SANDBOX_CHECK_EVERY = 8; // poll rounds between netns/veth checks

export interface SupervisorEvents {
  /** The containers to watch (the running ones are looked at). */
  containers(): Iterable<ContainerRecord>;
  /** A container's process ended: clean up once (pid tells a later run of the same container apart). */
  exited(id: string, pid: number, exitCode: number, error?: string): Promise<void>;
  /** A running container's netns or one of its veths was deleted outside dnsnet. */
  sandboxLost(c: ContainerRecord): Promise<void>;
  log(line: string): void;
}

export class Supervisor {
  private readonly children = new Map<string, number>(); // container id -> pid of a child we spawned
  private readonly waiters = new Map<string, (() => void)[]>();
  private readonly deadSince = new Map<string, number>(); // container id -> when the poll first saw it gone
  private poller: NodeJS.Timeout | undefined;
  private round = 0;

  constructor(private readonly ev: SupervisorEvents) {}

  start(): void {
    this.poller = setInterval(() => void this.poll(), POLL_MS);
    this.poller.unref();
  }

  close(): void {
    if (this.poller) clearInterval(this.poller);
  }

  /** Start a detached container's process, its output appended to `logFile`; the state to record. */
  spawn(c: ContainerRecord, argv: string[], env: Record<string, string>, logFile: string): ContainerState {
    const log = fs.openSync(logFile, 'a', 0o600);
    try {
      const [file = '', ...args] = argv;
      const child = spawn(file, args, { env, stdio: ['ignore', log, log], detached: true });
      if (child.pid === undefined) throw new DnsnetError('kernel', `start ${c.name}: spawn failed`);
      const pid = child.pid;
      child.on('error', (e) => this.ev.log(`[supervisor] ${c.name}: ${e.message}`));
      child.on('exit', (code, sig) => {
        this.children.delete(c.id);
        void this.exited(c.id, pid, code ?? 128 + signalNumber(sig));
      });
      child.unref();
      this.children.set(c.id, pid);
      return runningState(pid);
    } finally {
      fs.closeSync(log);
    }
  }

  /** A process ended (its exit event, the CLI's report, the poll): the engine cleans up, then waiters wake. */
  async exited(id: string, pid: number, exitCode: number, error?: string): Promise<void> {
    this.deadSince.delete(id);
    await this.ev.exited(id, pid, exitCode, error);
    for (const w of this.waiters.get(id) ?? []) w();
    this.waiters.delete(id);
  }

  /** Resolves once container `c` has exited (at once when it is not running). */
  waitExit(c: ContainerRecord): Promise<void> {
    return new Promise((resolve) => {
      if (c.state.status !== 'running') return resolve();
      const list = this.waiters.get(c.id) ?? [];
      list.push(resolve);
      this.waiters.set(c.id, list);
    });
  }

  /** SIGTERM, and SIGKILL after `timeoutSec` (Docker's `stop`); resolves once it exited or 5 s after SIGKILL. */
  async stop(c: ContainerRecord, timeoutSec: number): Promise<void> {
    if (c.state.status !== 'running') return;
    const done = this.waitExit(c);
    signal(c.state.pid, 'SIGTERM');
    const ended = await Promise.race([done.then(() => true), sleep(timeoutSec * 1000).then(() => false)]);
    if (!ended && c.state.status === 'running') {
      signal(c.state.pid, 'SIGKILL');
      await Promise.race([done, sleep(5000)]);
    }
  }

  /** SIGKILL, then wait for the exit (at most 5 s). */
  async kill(c: ContainerRecord): Promise<void> {
    const done = this.waitExit(c);
    signal(c.state.pid, 'SIGKILL');
    await Promise.race([done, sleep(5000)]);
  }

  /** Processes we are not the parent of (foreground, re-adopted), and netns or veths deleted by hand. */
  private async poll(): Promise<void> {
    // Netns and veths are checked every 8th round (2 s): at 1000 containers, checking both every round
    // made 8000 synchronous stat calls a second on the resolver's event loop.
    const checkSandboxes = this.round++ % SANDBOX_CHECK_EVERY === 0;
    for (const c of this.ev.containers()) {
      if (c.state.status !== 'running') continue;
      if (!this.children.has(c.id) && !isAlive(c.state.pid, c.state.startTime)) {
        // A foreground run's CLI reports the real exit code in a moment: give it that moment.
        const since = this.deadSince.get(c.id) ?? Date.now();
        this.deadSince.set(c.id, since);
        if (!c.detach && Date.now() - since < FOREGROUND_REPORT_GRACE_MS) continue;
        await this.exited(c.id, c.state.pid, 255, 'exit status unknown: the process was not a child of the daemon');
      } else if (checkSandboxes && sandboxGone(c)) {
        await this.ev.sandboxLost(c).catch((e: unknown) => this.ev.log(`[supervisor] ${c.name}: ${(e as Error).message}`));
      }
    }
  }
}

/** The state of a container whose process `pid` just started. */
export function runningState(pid: number): ContainerState {
  const startTime = readStartTime(pid);
  return { status: 'running', pid, ...(startTime ? { startTime } : {}), exitCode: 0, startedAt: new Date().toISOString() };
}

/** Its netns (one of its own: not `host`, not joined), or one of its veths, is gone. */
export function sandboxGone(c: ContainerRecord): boolean {
  if (netnsKind(c) !== 'own') return false;
  if (!fs.existsSync(netnsPath(c.id))) return true;
  if (c.endpoints.length === 0) return false;
  const links = linkNames();
  return c.endpoints.some((ep) => !links.has(ep.hostVeth));
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function signalNumber(sig: NodeJS.Signals | null): number {
  if (!sig) return 0;
  return (os.constants.signals as Record<string, number>)[sig] ?? 0;
}
