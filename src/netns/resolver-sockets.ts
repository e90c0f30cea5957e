// Opens the embedded resolver's UDP and TCP sockets on 127.0.0.11:53 inside a netns, owned by this (host-netns) process.
import { fork, type ChildProcess } from 'node:child_process';
import type dgram from 'node:dgram';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { DnsnetError } from '../errors.js';

const NSENTER = '/usr/bin/nsenter';
const UNSHARE = '/usr/bin/unshare';
const HELPER = fileURLToPath(new URL('./socket-helper.js', import.meta.url));

export interface ResolverSockets {
  udp: dgram.Socket;
  tcp: net.Server;
}

export interface BindOptions {
  timeoutMs?: number;
  /** Another address than 127.0.0.11 (a Podman network's gateway). */
  host?: string;
  port?: number;
  loUp?: boolean;
  keep?: boolean;
}

/** A running socket-helper.js: its pid, and the one hand-off it can do. */
export interface SocketHelper {
  readonly pid: number;
  /** Resolves once the helper has loaded and waits for `bind` (a spare is started long before it is used). */
  readonly ready: Promise<void>;
  /**
   * Ask it to bind inside its netns (bringing `lo` up first with `loUp`) and hand both sockets over.
   * It exits afterwards, unless `keep`: then it stays (holding its netns) until discarded.
   */
  bind(opts?: BindOptions): Promise<ResolverSockets>;
  /** Stop it without a hand-off (idempotent). */
  discard(): void;
  /** False once it exited or was discarded. */
  readonly alive: boolean;
}

/**
 * Fork socket-helper.js through `launcher` (nsenter into a named netns, or unshare into a new one).
 * `what` starts every error message.
 */
function startHelper(launcherArgv: string[], what: string, env: Record<string, string>): SocketHelper {
  const [execPath = '', ...execArgv] = launcherArgv;
  let child: ChildProcess;
  try {
    child = fork(HELPER, [], {
      execPath,
      execArgv: [...execArgv, process.execPath],
      // json serialization carries handles fine; nothing else is sent. NODE_OPTIONS is dropped so a
      // test runner's loaders do not leak into the helper.
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
  } catch (error) {
    const e = new DnsnetError('kernel', `${what}: ${(error as Error).message}`, { cause: error });
    return deadHelper(e);
  }
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    if (stderr.length < 4096) stderr += chunk;
  });
  let exited: DnsnetError | undefined;
  const exitWaiters: ((e: DnsnetError) => void)[] = [];
  const onGone = (error: DnsnetError): void => {
    if (exited) return;
    exited = error;
    for (const w of exitWaiters.splice(0)) w(error);
  };
  child.on('error', (error) => onGone(new DnsnetError('kernel', `${what}: ${error.message}`, { cause: error })));
  child.on('exit', (code, signal) => {
    // stderr may still be arriving: 'close' comes after both the exit and the end of the pipes.
    child.once('close', () => {
      const why = stderr.trim().split('\n').filter(Boolean).pop() ?? `helper exited (${signal ?? code})`;
      onGone(new DnsnetError('kernel', `${what}: ${why}`));
    });
  });
  const whenGone = (fn: (e: DnsnetError) => void): void => {
    if (exited) fn(exited);
    else exitWaiters.push(fn);
  };
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };

  const ready = new Promise<void>((resolve, reject) => {
    const onMessage = (msg: unknown): void => {
      const m = msg as { type?: string; message?: string };
      if (m?.type === 'ready') {
        child.off('message', onMessage);
        resolve();
      }
    };
    child.on('message', onMessage);
    whenGone(reject);
  });
  ready.catch(() => undefined); // observed by whoever awaits it; never an unhandled rejection

  let bound = false;
  return {
    pid: child.pid ?? 0,
    ready,
    get alive() {
      return exited === undefined && child.exitCode === null && child.signalCode === null;
    },
    discard() {
      if (child.connected) child.disconnect();
      kill();
    },
    bind(opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 5000;
      if (bound) return Promise.reject(new DnsnetError('internal', `${what}: the helper was already used`));
      bound = true;
      return new Promise((resolve, reject) => {
        let udp: dgram.Socket | undefined;
        let tcp: net.Server | undefined;
        let settled = false;
        const finish = (error?: DnsnetError): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          child.off('message', onMessage);
          if (error) {
            udp?.close();
            tcp?.close();
            kill();
            reject(error);
            return;
          }
          if (!opts.keep && child.connected) child.disconnect();
          resolve({ udp: udp!, tcp: tcp! });
        };
        const timer = setTimeout(() => finish(new DnsnetError('kernel', `${what}: helper did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
        const onMessage = (msg: unknown, handle: unknown): void => {
          const m = msg as { type?: string; message?: string };
          if (m?.type === 'udp' && handle) udp = handle as dgram.Socket;
          else if (m?.type === 'tcp' && handle) tcp = handle as net.Server;
          else if (m?.type === 'error') finish(new DnsnetError('kernel', `${what}: ${m.message ?? 'helper failed'}`));
          if (udp && tcp) finish();
        };
        child.on('message', onMessage);
        whenGone((e) => finish(e));
        // Only once it listens: a message that arrives before the helper's module has run could be lost.
        ready.then(
          () => {
            if (settled) return;
            try {
              child.send({ type: 'bind', ...(opts.port ? { port: opts.port } : {}), ...(opts.host ? { host: opts.host } : {}), ...(opts.loUp ? { lo: true } : {}) });
            } catch (error) {
              finish(new DnsnetError('kernel', `${what}: ${(error as Error).message}`, { cause: error }));
            }
          },
          (e: DnsnetError) => finish(e),
        );
      });
    },
  };
}

function deadHelper(error: DnsnetError): SocketHelper {
  const ready = Promise.reject(error);
  ready.catch(() => undefined);
  return { pid: 0, ready, alive: false, discard() {}, bind: () => Promise.reject(error) };
}

/**
 * Fork socket-helper.js inside `netnsPath` (nsenter --net), receive its UDP socket and TCP server
 * bound to 127.0.0.11:53 over the IPC channel. `lo` must already be up in that netns.
 */
export function openResolverSockets(netnsPath: string, opts: { timeoutMs?: number; host?: string; port?: number } = {}): Promise<ResolverSockets> {
  const helper = startHelper([NSENTER, `--net=${netnsPath}`], `open resolver sockets in ${netnsPath}`, {});
  return helper.bind(opts); // the timeout covers the helper's start too
}

/**
 * A socket helper started in a new, unnamed netns (`unshare --net`): the start of a spare (spare.ts),
 * made before a `run` needs it. Discarded before its netns is named, the netns goes away with it.
 */
export function startSpareHelper(): SocketHelper {
  return startHelper([UNSHARE, '--net'], 'prepare a spare netns', {});
}

/** Close both sockets (not handed to the resolver after all). */
export function closeResolverSockets(s: ResolverSockets): void {
  s.udp.close();
  s.tcp.close();
}
