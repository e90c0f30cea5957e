#!/usr/bin/env node
// `aardvark-dns` for Podman's netavark, served by the dnsnet daemon (installed by `dnsnet system podman
// install`). It keeps the contract netavark 1.4 relies on:
//   aardvark-dns [-c|--config DIR] [-p|--port PORT] [--filter-search-domain D] run | version
// - `run` returns (exit 0) only once every listen address of DIR answers, because netavark waits for it and
//   then starts the container; a failure exits 1 with the reason on stderr (netavark shows it).
// - The server itself stays as a small process of its own session, stdio on /dev/null and no inherited
//   descriptor, whose pid is DIR/aardvark.pid (written without a newline: netavark parses it untrimmed).
// - SIGHUP (netavark: a container came or went) reloads DIR; once no network file is left it exits.
// The names are served by the daemon of DNSNET_ROOT / DNSNET_RUN (started on demand, in this process's
// netns and mount namespace, as the CLI starts it); this process holds the daemon's registration open, and
// registers again (starting a new daemon) if the daemon goes away.
import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, clientPathsFromEnv } from './client.js';
import { ROUTES } from '../api/routes.js';
import { PID_FILE, isNetworkFile } from '../podman/config.js';

const CHILD_ENV = 'DNSNET_AARDVARK_SERVER';
const DEFAULT_PORT = 5533; // aardvark-dns's default; netavark always passes -p
const VERSION = '1.4.0'; // the aardvark-dns whose contract this keeps
const RETRY_MS = 100;
const SIGHUP_DELAY_MS = 100;

interface Args {
  config?: string;
  port: number;
  command?: string;
}

function usage(): string {
  return 'usage: aardvark-dns [-c|--config DIR] [-p|--port PORT] [--filter-search-domain DOMAIN] run | version';
}

function die(message: string, code = 1): never {
  process.stderr.write(`Error: ${message}\n`);
  process.exit(code);
}

function parseArgs(argv: string[]): Args {
  const args: Args = { port: DEFAULT_PORT };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) die(`${flag} needs a value\n${usage()}`, 2);
      return v;
    };
    if (flag === '-c' || flag === '--config') args.config = value();
    else if (flag === '-p' || flag === '--port') {
      const v = value();
      const port = Number(v);
      if (!/^\d+$/.test(v) || port < 1 || port > 65535) die(`invalid port ${JSON.stringify(v)}`, 2);
      args.port = port;
    } else if (flag === '--filter-search-domain') value(); // dnsnet always answers <name>.dns.podman and <name>
    else if (flag === '-V' || flag === '--version') args.command = 'version';
    else if (flag === '-h' || flag === '--help') args.command = 'help';
    else if (!a.startsWith('-') && args.command === undefined) args.command = a;
    else die(`unexpected argument ${JSON.stringify(a)}\n${usage()}`, 2);
  }
  return args;
}

/**
 * Close the descriptors we inherited (netavark passes its own on; Rust's Command does not close them): every
 * fd above 2 without close-on-exec. Node marks each descriptor it opens close-on-exec, so those are its own.
 */
function closeInherited(): void {
  let fds: string[];
  try {
    fds = fs.readdirSync('/proc/self/fd');
  } catch {
    return;
  }
  for (const name of fds) {
    const fd = Number(name);
    if (!(fd > 2)) continue;
    try {
      const flags = /^flags:\s*([0-7]+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (flags && (parseInt(flags[1]!, 8) & 0o2000000) === 0) fs.closeSync(fd);
    } catch {
      /* gone meanwhile (the directory listing's own fd) */
    }
  }
}

/** The parent: start the server in its own session and wait for it to answer (or fail). */
function start(args: Args, dir: string): void {
  const child = fork(fileURLToPath(import.meta.url), ['--config', dir, '--port', String(args.port), 'run'], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    env: { ...process.env, [CHILD_ENV]: '1' },
  });
  child.on('message', (m: { ready?: boolean; error?: string }) => {
    if (m.ready) {
      child.disconnect();
      child.unref();
      process.exit(0);
    }
    if (m.error) die(m.error);
  });
  child.on('exit', (code, signal) => die(`aardvark-dns server exited (${signal ?? code}) before it served ${dir}`));
}

/** The server: register DIR with the daemon, keep the registration, reload on SIGHUP, leave when DIR is empty. */
async function serve(args: Args, dir: string): Promise<void> {
  delete process.env[CHILD_ENV]; // not for the daemon this may start
  const pidFile = path.join(dir, PID_FILE);
  const paths = clientPathsFromEnv();
  const daemon = { script: fileURLToPath(new URL('./dnsnet.cjs', import.meta.url)), execArgv: [] };
  let ready = false;
  // Resolves once the message left (or there is no parent to tell): an exit right after would lose it.
  const tellParent = (m: { ready?: boolean; error?: string }): Promise<void> =>
    new Promise((resolve) => {
      if (!process.send || !process.connected) return resolve();
      process.send(m, () => {
        if (m.ready && process.connected) process.disconnect();
        resolve();
      });
    });
  const leave = (code: number): never => {
    try {
      if (fs.readFileSync(pidFile, 'utf8') === String(process.pid)) fs.rmSync(pidFile);
    } catch {
      /* someone else's now */
    }
    process.exit(code);
  };

  // Nothing left to serve: leave, unless a network file came meanwhile (netavark's next setup may have
  // written one and signalled us between the daemon's reading and now).
  const leaveIfEmpty = (): void => {
    let files: string[] = [];
    try {
      files = fs.readdirSync(dir).filter(isNetworkFile);
    } catch {
      /* the directory is gone: nothing to serve */
    }
    if (files.length === 0) leave(0);
  };

  // netavark's SIGHUP: reload; one at a time, and one more if another came meanwhile. When the daemon
  // watches the directory (inotify) it has read the change already: the reload, then only there to see
  // whether the directory is empty, waits a moment (coalescing a burst) and stays off a container's start.
  let watching = false;
  let reloading: Promise<void> | undefined;
  let again = false;
  const reload = (): void => {
    if (reloading) {
      again = true;
      return;
    }
    reloading = (async () => {
      if (watching) await new Promise((r) => setTimeout(r, SIGHUP_DELAY_MS));
      do {
        again = false;
        try {
          const r = await new Client({ paths, daemon }).call<{ networks: number }>(ROUTES.podmanReload, { body: { dir, pid: process.pid } });
          if (r.networks === 0) leaveIfEmpty();
        } catch {
          // The daemon is restarting: the registration below reads the directory afresh anyway.
        }
      } while (again);
      reloading = undefined;
    })();
  };
  process.on('SIGHUP', reload);
  process.on('SIGTERM', () => leave(0));
  process.on('SIGINT', () => leave(0));

  for (;;) {
    let end: string | undefined;
    try {
      await new Client({ paths, daemon }).streamLines(ROUTES.podmanServe.path, { dir, port: args.port, pid: process.pid }, (line) => {
        if (typeof line.end === 'string') {
          end = line.end;
          return;
        }
        if (typeof line.networks !== 'number') return;
        watching = line.watching === true;
        const empty = line.networks === 0; // nothing to serve: leave (once the parent knows it may return)
        if (!ready) {
          ready = true;
          fs.writeFileSync(pidFile, String(process.pid));
          void tellParent({ ready: true }).then(() => empty && leaveIfEmpty());
        } else if (empty) leaveIfEmpty();
      });
    } catch (error) {
      if (!ready) {
        await tellParent({ error: (error as Error).message });
        process.exit(1);
      }
    }
    if (end === 'replaced') process.exit(0); // another aardvark-dns serves the directory now (its pid file)
    // The daemon went away (killed, restarted, stopping): register again with a new one.
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  if (args.command === 'version') {
    process.stdout.write(`aardvark-dns ${VERSION} (dnsnet)\n`);
    return;
  }
  if (args.command === 'help') {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  if (args.command !== 'run') die(`${args.command === undefined ? 'a subcommand is required' : `unknown subcommand ${JSON.stringify(args.command)}`}\n${usage()}`, 2);
  if (!args.config) die('--config is required');
  const dir = path.resolve(args.config);
  try {
    if (!fs.statSync(dir).isDirectory()) die(`config directory ${dir} must exist and be a directory`);
  } catch {
    die(`config directory ${dir} must exist and be a directory`);
  }
  closeInherited();
  if (process.env[CHILD_ENV] === '1') void serve(args, dir);
  else start(args, dir);
}

main();
