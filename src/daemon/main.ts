// `dnsnet daemon`: one per state root; owns state, kernel objects, resolver sockets and the watcher.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { DnsnetError } from '../errors.js';
import { clusterConfig } from '../cluster/config.js';
import { watchHostResolvConf } from '../resolvconf/index.js';
import { paths, rootsFromEnv, type Roots } from '../state/paths.js';
import { Engine } from './engine.js';
import { METRICS_CONTENT_TYPE } from './metrics.js';
import { createApiServer } from './server.js';

// One line each on stderr: under systemd the journal stamps them itself (JOURNAL_STREAM is set), elsewhere
// (the on-demand daemon's log file) the line carries its time.
const STAMP = process.env.JOURNAL_STREAM === undefined;
function log(line: string): void {
  process.stderr.write(STAMP ? `${new Date().toISOString()} ${line}\n` : `${line}\n`);
}

/**
 * Tell systemd (Type=notify) that the daemon is ready or stopping. Node has no unix datagram socket, so this
 * goes through systemd-notify (NotifyAccess=all in the unit); nothing happens without NOTIFY_SOCKET.
 */
function notifySystemd(state: string): void {
  if (!process.env.NOTIFY_SOCKET) return;
  const r = spawnSync('systemd-notify', [`--pid=${process.pid}`, ...state.split('\n')], { stdio: 'ignore', timeout: 5000 });
  if (r.error || r.status !== 0) log(`[daemon] systemd-notify ${state.split('\n')[0]}: ${r.error?.message ?? `exit ${r.status}`}`);
}

/** `--metrics-addr HOST:PORT` (or DNSNET_METRICS_ADDR): where /metrics is also served over TCP; checked before anything starts. */
export function parseMetricsAddr(text: string | undefined): { host: string; port: number } | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw new DnsnetError('invalid', `invalid metrics address "${text}": expected HOST:PORT (e.g. 127.0.0.1:9153)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/**
 * Take the state root's lock: an abstract unix socket named after the root, which the kernel frees when
 * its process dies, so there is no stale lock to take over (two daemons started at once after a crash
 * could both take over a stale lock file). The lock file only says which pid holds it, for the message.
 */
async function acquireLock(roots: Roots): Promise<() => void> {
  const lockFile = paths.lockFile(roots);
  await fsp.mkdir(roots.stateRoot, { recursive: true, mode: 0o700 });
  const name = `\0dnsnet-daemon:${crypto.createHash('sha256').update(roots.stateRoot).digest('hex')}`;
  const lock = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      lock.once('error', reject);
      lock.listen(name, () => resolve());
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    let pid = 0;
    try {
      pid = Number(fs.readFileSync(lockFile, 'utf8').trim());
    } catch {
      // not written yet
    }
    throw new DnsnetError('conflict', `start daemon: another dnsnet daemon${pid > 0 ? ` (pid ${pid})` : ''} already serves ${roots.stateRoot}`);
  }
  lock.unref(); // the lock alone does not keep the daemon alive
  fs.writeFileSync(lockFile, `${process.pid}\n`, { mode: 0o600 });
  return () => {
    fs.rmSync(lockFile, { force: true });
    lock.close();
  };
}

async function listen(server: net.Server, socket: string): Promise<void> {
  await fsp.rm(socket, { force: true });
  const oldMask = process.umask(0o177); // the socket is created 0600: root only
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  await fsp.chmod(socket, 0o600);
}

export async function runDaemon(): Promise<void> {
  const roots = rootsFromEnv();
  clusterConfig(process.env); // a bad --cluster-store or --cluster-advertise: one line, before anything starts
  const metricsAddr = parseMetricsAddr(process.env.DNSNET_METRICS_ADDR);
  if (process.getuid?.() !== 0) throw new DnsnetError('invalid', 'start daemon: dnsnet needs root (namespaces, bridges, nftables)');
  await fsp.mkdir(roots.runRoot, { recursive: true, mode: 0o700 });
  const release = await acquireLock(roots);
  process.title = `dnsnet daemon ${roots.stateRoot}`; // so `pgrep -af dnsnet` finds it
  const engine = new Engine(roots, log);
  let watcher: { close(): Promise<void> } | undefined;
  const server = createApiServer(engine, log);
  let metricsServer: http.Server | undefined;
  let stopping = false;
  const shutdown = async (sig: string, opts: { removeRoots: boolean } = { removeRoots: false }) => {
    if (stopping) return;
    stopping = true;
    notifySystemd('STOPPING=1');
    log(`[daemon] ${sig}: shutting down${opts.removeRoots ? '' : ' (containers keep running and are re-adopted at the next start)'}`);
    server.close();
    metricsServer?.close();
    await watcher?.close().catch(() => undefined);
    await engine.close().catch(() => undefined);
    await fsp.rm(paths.socket(roots), { force: true });
    await fsp.rm(paths.pidFile(roots), { force: true });
    release();
    if (opts.removeRoots) {
      // `system reset`: nothing of this root is left (its containers, networks and images are gone already).
      await fsp.rm(roots.stateRoot, { recursive: true, force: true }).catch((e: unknown) => log(`[daemon] remove ${roots.stateRoot}: ${(e as Error).message}`));
      await fsp.rm(roots.runRoot, { recursive: true, force: true }).catch((e: unknown) => log(`[daemon] remove ${roots.runRoot}: ${(e as Error).message}`));
    }
    process.exit(0);
  };
  engine.stopDaemon = (why, opts) => void shutdown(why, opts);
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  try {
    await engine.boot();
    const reload = (text: string, what?: string): void => {
      engine.reloadHost(text, what).catch((e: unknown) => log(`[watcher] reload: ${(e as Error).message}`));
    };
    // The host file, and systemd-resolved's upstream file: the default network's copy is made from that one
    // when the host file only names 127.0.0.53 (Ubuntu's default), so a change there must reach it too.
    const watchers = [
      watchHostResolvConf(roots.hostResolvConf, (text) => reload(text), { initialText: engine.host.text }),
      watchHostResolvConf(roots.systemdResolvConf, () => reload(engine.host.text, "systemd-resolved's resolv.conf"), { initialText: engine.host.systemdText }),
    ];
    watcher = { close: async () => void (await Promise.all(watchers.map((w) => w.close()))) };
    await Promise.all(watchers.map((w) => w.ready));
    await listen(server, paths.socket(roots));
    if (metricsAddr) {
      metricsServer = http.createServer((req, res) => {
        const ok = req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics';
        const text = ok ? engine.metrics() : 'only GET /metrics here\n';
        res.writeHead(ok ? 200 : 404, { 'content-type': ok ? METRICS_CONTENT_TYPE : 'text/plain', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      });
      await new Promise<void>((resolve, reject) => {
        metricsServer!.once('error', (e) => reject(new DnsnetError('invalid', `metrics address ${metricsAddr.host}:${metricsAddr.port}: ${e.message}`)));
        metricsServer!.listen(metricsAddr.port, metricsAddr.host, () => resolve());
      });
      engine.metricsAddr = `${metricsAddr.host.includes(':') ? `[${metricsAddr.host}]` : metricsAddr.host}:${(metricsServer.address() as net.AddressInfo).port}`;
    }
    await fsp.writeFile(paths.pidFile(roots), `${process.pid}\n`, { mode: 0o600 });
  } catch (error) {
    release();
    await engine.close().catch(() => undefined);
    throw error;
  }
  log(`[daemon] serving ${paths.socket(roots)} (state ${roots.stateRoot}, host resolv.conf ${roots.hostResolvConf}${engine.metricsAddr ? `, metrics on http://${engine.metricsAddr}/metrics` : ''})`);
  notifySystemd(`READY=1\nSTATUS=serving ${paths.socket(roots)}\nMAINPID=${process.pid}`);
}
