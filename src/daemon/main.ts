// `dnsnet daemon`: one per state root; owns state, kernel objects, resolver sockets and the watcher.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { DnsnetError } from '../errors.js';
import { clusterConfig } from '../cluster/config.js';
import { watchHostResolvConf } from '../resolvconf/index.js';
import { paths, rootsFromEnv, type Roots } from '../state/paths.js';
import { Engine } from './engine.js';
import { createApiServer } from './server.js';

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
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
  if (process.getuid?.() !== 0) throw new DnsnetError('invalid', 'start daemon: dnsnet needs root (namespaces, bridges, nftables)');
  await fsp.mkdir(roots.runRoot, { recursive: true, mode: 0o700 });
  const release = await acquireLock(roots);
  process.title = `dnsnet daemon ${roots.stateRoot}`; // so `pgrep -af dnsnet` finds it
  const engine = new Engine(roots, log);
  let watcher: { close(): Promise<void> } | undefined;
  const server = createApiServer(engine, log);
  let stopping = false;
  const shutdown = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log(`[daemon] ${sig}: shutting down (containers keep running and are re-adopted at the next start)`);
    server.close();
    await watcher?.close().catch(() => undefined);
    await engine.close().catch(() => undefined);
    await fsp.rm(paths.socket(roots), { force: true });
    await fsp.rm(paths.pidFile(roots), { force: true });
    release();
    process.exit(0);
  };
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
    await fsp.writeFile(paths.pidFile(roots), `${process.pid}\n`, { mode: 0o600 });
  } catch (error) {
    release();
    await engine.close().catch(() => undefined);
    throw error;
  }
  log(`[daemon] serving ${paths.socket(roots)} (state ${roots.stateRoot}, host resolv.conf ${roots.hostResolvConf})`);
}
