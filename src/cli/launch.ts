// Running a Launch from the daemon with the user's terminal attached: signals, exit status, 125 when it cannot start.
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import type { Launch } from '../api/types.js';
import { DnsnetError, wrapError } from '../errors.js';
import { reportFailure } from './exit.js';

export interface LaunchHooks {
  /** Called once the child runs (foreground `run` reports its PID to the daemon). */
  started?(pid: number): Promise<void>;
}

/**
 * Spawn `launch` with inherited stdio and resolve to its exit code (128+N for signal N). The
 * launcher's own 126/127 pass through. While it runs, this process ignores SIGINT and SIGQUIT
 * (the terminal sends them to the whole foreground process group, the child included) and
 * forwards SIGTERM and SIGHUP, which are aimed at us alone, to the child.
 */
export async function runLaunch(launch: Launch, hooks: LaunchHooks = {}): Promise<number> {
  const [file, ...args] = launch.argv;
  if (file === undefined) throw new DnsnetError('internal', 'start container process: the daemon sent an empty command');
  // node:child_process only for a foreground run or exec, not on every command.
  const { spawn } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  const child = spawn(file, args, { env: launch.env, stdio: 'inherit' });
  const exit = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => resolve(exitCodeOf(code, signal)));
  });
  const handlers = installSignals(child);
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  } catch (error) {
    removeSignals(handlers);
    throw wrapError(`start ${file}`, error);
  }
  try {
    // The command is running: a failed report must not abandon it, so say so and keep waiting.
    if (hooks.started && child.pid !== undefined) await hooks.started(child.pid).catch((error) => reportFailure(error));
    return await exit;
  } finally {
    removeSignals(handlers);
  }
}

export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const number = signal ? os.constants.signals[signal] : undefined;
  return number === undefined ? 128 : 128 + number;
}

type SignalHandlers = [NodeJS.Signals, () => void][];

function installSignals(child: ChildProcess): SignalHandlers {
  const forward = (signal: NodeJS.Signals) => () => {
    child.kill(signal);
  };
  const handlers: SignalHandlers = [
    ['SIGINT', () => {}],
    ['SIGQUIT', () => {}],
    ['SIGTERM', forward('SIGTERM')],
    ['SIGHUP', forward('SIGHUP')],
  ];
  for (const [signal, handler] of handlers) process.on(signal, handler);
  return handlers;
}

function removeSignals(handlers: SignalHandlers): void {
  for (const [signal, handler] of handlers) process.off(signal, handler);
}
