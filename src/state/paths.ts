// Where dnsnet keeps things: roots from the environment (so tests run hermetically), paths derived from them.
import path from 'node:path';
import { runFiles, runRootFromEnv } from '../api/paths.js';
import { DEFAULT_STATE_ROOT, defaultBridgeFor } from './kernel-names.js';

export { DEFAULT_STATE_ROOT, defaultBridgeFor } from './kernel-names.js';

export interface Roots {
  stateRoot: string; // DNSNET_ROOT
  runRoot: string; // DNSNET_RUN
  hostResolvConf: string; // DNSNET_HOST_RESOLV_CONF
  systemdResolvConf: string; // DNSNET_SYSTEMD_RESOLV_CONF
  hostHosts: string; // DNSNET_HOST_HOSTS: the host's /etc/hosts (what a `--network host` container gets)
  defaultBridge: string; // DNSNET_DEFAULT_BRIDGE: the default network's device, settable per root
}


export function rootsFromEnv(env: NodeJS.ProcessEnv = process.env): Roots {
  const stateRoot = path.resolve(env.DNSNET_ROOT || DEFAULT_STATE_ROOT);
  return {
    stateRoot,
    runRoot: runRootFromEnv(env),
    hostResolvConf: path.resolve(env.DNSNET_HOST_RESOLV_CONF || '/etc/resolv.conf'),
    systemdResolvConf: path.resolve(env.DNSNET_SYSTEMD_RESOLV_CONF || '/run/systemd/resolve/resolv.conf'),
    hostHosts: path.resolve(env.DNSNET_HOST_HOSTS || '/etc/hosts'),
    defaultBridge: env.DNSNET_DEFAULT_BRIDGE || defaultBridgeFor(stateRoot),
  };
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
  /** `run IMAGE`: the container's writable layer (upper, work) and the overlay's mount point (merged). */
  rootfsDir: (r: Roots, id: string) => path.join(r.stateRoot, 'containers', id, 'rootfs'),
  socket: (r: Roots) => runFiles.socket(r.runRoot),
  pidFile: (r: Roots) => runFiles.pidFile(r.runRoot),
  lockFile: (r: Roots) => path.join(r.stateRoot, 'daemon.lock'), // which pid holds the root (the lock itself: daemon/main.ts)
  logFile: (r: Roots, id: string) => path.join(r.runRoot, 'logs', `${id}.log`),
};
