// Where dnsnet keeps things: roots from the environment (so tests run hermetically), paths derived from them.
import { createRequire } from 'node:module';
import path from 'node:path';
import { runFiles, runRootFromEnv } from '../api/paths.js';

export interface Roots {
  stateRoot: string; // DNSNET_ROOT
  runRoot: string; // DNSNET_RUN
  hostResolvConf: string; // DNSNET_HOST_RESOLV_CONF
  systemdResolvConf: string; // DNSNET_SYSTEMD_RESOLV_CONF
  defaultBridge: string; // DNSNET_DEFAULT_BRIDGE: the default network's device, settable per root
}

export const DEFAULT_STATE_ROOT = '/var/lib/dnsnet';

export function rootsFromEnv(env: NodeJS.ProcessEnv = process.env): Roots {
  const stateRoot = path.resolve(env.DNSNET_ROOT || DEFAULT_STATE_ROOT);
  return {
    stateRoot,
    runRoot: runRootFromEnv(env),
    hostResolvConf: path.resolve(env.DNSNET_HOST_RESOLV_CONF || '/etc/resolv.conf'),
    systemdResolvConf: path.resolve(env.DNSNET_SYSTEMD_RESOLV_CONF || '/run/systemd/resolve/resolv.conf'),
    defaultBridge: env.DNSNET_DEFAULT_BRIDGE || defaultBridgeFor(stateRoot),
  };
}

// node:crypto is loaded when first needed: every `dnsnet` command imports this file, few hash a root.
const load = createRequire(import.meta.url);
function sha256hex(text: string): string {
  return (load('node:crypto') as typeof import('node:crypto')).createHash('sha256').update(text).digest('hex');
}

/** `dnsnet0` for the default root; another root gets its own name, so two roots never share one. */
export function defaultBridgeFor(stateRoot: string): string {
  if (stateRoot === DEFAULT_STATE_ROOT) return 'dnsnet0';
  return `dnsnet${sha256hex(stateRoot).slice(0, 8)}`;
}

/** Written as the alias of every link a root makes: tells its orphans from another root's objects. */
export function ownerTag(r: Roots): string {
  return `dnsnet:${sha256hex(r.stateRoot).slice(0, 8)}`;
}

export const paths = {
  networksDir: (r: Roots) => path.join(r.stateRoot, 'networks'),
  networkFile: (r: Roots, id: string) => path.join(r.stateRoot, 'networks', `${id}.json`),
  containersDir: (r: Roots) => path.join(r.stateRoot, 'containers'),
  containerDir: (r: Roots, id: string) => path.join(r.stateRoot, 'containers', id),
  containerFile: (r: Roots, id: string) => path.join(r.stateRoot, 'containers', id, 'config.json'),
  hostsFile: (r: Roots, id: string) => path.join(r.stateRoot, 'containers', id, 'hosts'),
  hostnameFile: (r: Roots, id: string) => path.join(r.stateRoot, 'containers', id, 'hostname'),
  resolvConfFile: (r: Roots, id: string) => path.join(r.stateRoot, 'containers', id, 'resolv.conf'),
  socket: (r: Roots) => runFiles.socket(r.runRoot),
  pidFile: (r: Roots) => runFiles.pidFile(r.runRoot),
  lockFile: (r: Roots) => path.join(r.stateRoot, 'daemon.lock'), // which pid holds the root (the lock itself: daemon/main.ts)
  logFile: (r: Roots, id: string) => path.join(r.runRoot, 'logs', `${id}.log`),
  netnsName: (id: string) => `dnsnet-${id.slice(0, 12)}`,
  netnsPath: (id: string) => `/run/netns/dnsnet-${id.slice(0, 12)}`,
};
