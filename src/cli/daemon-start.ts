// Starting the daemon on demand: spawn `dnsnet daemon` detached, logging to <run>/daemon.log, and wait for /_ping.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { DnsnetError } from '../errors.js';
import { rootsFromEnv } from '../state/paths.js';
import type { ClientPaths } from '../api/paths.js';

/** The program to re-run as `daemon`: this CLI's entry script and the Node flags it runs under. */
export interface DaemonEntry {
  script: string;
  execArgv: string[];
}

export interface StartTiming {
  pollMs: number;
  waitMs: number;
  /** After our daemon exited, how long another one (that won a start race) may still take to answer. */
  graceAfterExitMs: number;
}

const TIMING: StartTiming = { pollMs: 20, waitMs: 10_000, graceAfterExitMs: 3_000 };

/**
 * Node flags the daemon runs under, before the caller's own (the last of a repeated flag wins).
 * Left to itself, V8 sized the daemon's heap for a throughput job: during a burst of `run`s it grew
 * the young generation to two 16 MB semi-spaces, and let the old space reach up to 4x what was live
 * before collecting it. That, not the containers (12 KB of live heap each), made the 170 MB at 1000
 * containers. 4 MB semi-spaces and a 1.5x growth factor keep it near what is live; under query load
 * the GC time stayed within the noise of the defaults (bench/RESULTS.md, section 5). V8 reads these
 * only at start-up (v8.setFlagsFromString later has no effect), hence here and not in the daemon.
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=4', '--heap-growing-percent=50'];

export async function startDaemon(paths: ClientPaths, entry: DaemonEntry, ping: () => Promise<boolean>, timing: StartTiming = TIMING): Promise<void> {
  fs.mkdirSync(paths.runDir, { recursive: true, mode: 0o700 });
  const log = fs.openSync(paths.daemonLog, 'a', 0o600);
  const logStart = fs.fstatSync(log).size;
  let exited: { how: string; at: number } | undefined;
  try {
    // node:child_process only when a daemon has to be started (not on every command).
    const { spawn } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
    const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...entry.execArgv, entry.script, 'daemon'], {
      // The daemon titles itself `dnsnet daemon ROOT`, but a title never grows past the original argv
      // (a long root was cut short): start it with that text as argv[0], so the title fits.
      argv0: `dnsnet daemon ${rootsFromEnv(process.env).stateRoot}`,
      detached: true, // its own session: Ctrl-C in this terminal must not reach the daemon
      stdio: ['ignore', log, log],
      env: process.env,
    });
    child.on('error', (error) => (exited = { how: error.message, at: Date.now() }));
    child.on('exit', (code, signal) => (exited = { how: signal ? `was killed by ${signal}` : `exited with code ${code}`, at: Date.now() }));
    child.unref();
  } finally {
    fs.closeSync(log);
  }
  // A daemon that exits at once may have lost a start race to another one: give that one a moment.
  const deadline = Date.now() + timing.waitMs;
  while (Date.now() < deadline && !(exited && Date.now() > exited.at + timing.graceAfterExitMs)) {
    if (await ping()) return;
    await sleep(timing.pollMs);
  }
  const waited = Math.round((Date.now() - deadline + timing.waitMs) / 1000);
  const lastLine = exited ? lastLogLine(paths.daemonLog, logStart) : '';
  const how = exited ? `; it ${exited.how}${lastLine ? `: ${lastLine}` : ''}` : '';
  throw new DnsnetError('internal', `start daemon: no answer on ${paths.socket} after ${waited} s${how} (see ${paths.daemonLog})`);
}

/** The last line the daemon logged since `from`: usually why it could not start. */
function lastLogLine(file: string, from: number): string {
  try {
    const text = fs.readFileSync(file).subarray(from).toString('utf8');
    return text.split('\n').map((l) => l.trim()).filter((l) => l !== '').pop() ?? '';
  } catch {
    return '';
  }
}
