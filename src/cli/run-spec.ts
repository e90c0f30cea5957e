// Pure builders from parsed `run` / `exec` flags to the API's RunSpec and ExecSpec (validation is the daemon's).
import type { ExecSpec, RunSpec } from '../api/types.js';

/** The options of `dnsnet run` as commander hands them over (hidden aliases already merged). */
export interface RunOptions {
  detach?: boolean;
  rm?: boolean;
  name?: string;
  network?: string;
  hostname?: string;
  ip?: string;
  networkAlias?: string[];
  link?: string[];
  addHost?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOption?: string[];
  env?: string[];
  workdir?: string;
  rootfs?: string;
  publish?: string[];
  publishAll?: boolean;
  expose?: string[];
  entrypoint?: string;
  user?: string;
}

export interface ExecOptions {
  env?: string[];
  workdir?: string;
}

export function buildRunSpec(opts: RunOptions, cmd: string[], callerEnv: NodeJS.ProcessEnv = process.env): RunSpec {
  const env = opts.env ?? [];
  const spec: RunSpec = {
    detach: opts.detach ?? false,
    autoRemove: opts.rm ?? false,
    networkAliases: opts.networkAlias ?? [],
    links: opts.link ?? [],
    extraHosts: opts.addHost ?? [],
    dns: opts.dns ?? [],
    dnsSearch: opts.dnsSearch ?? [],
    dnsOptions: opts.dnsOption ?? [],
    env,
    cmd,
  };
  if (opts.name !== undefined) spec.name = opts.name;
  if (opts.network !== undefined) spec.network = opts.network;
  if (opts.hostname !== undefined) spec.hostname = opts.hostname;
  if (opts.ip !== undefined) spec.ip = opts.ip;
  if (opts.workdir !== undefined) spec.workdir = opts.workdir;
  if (opts.rootfs !== undefined) spec.rootfs = opts.rootfs;
  if (opts.publish !== undefined) spec.publish = opts.publish;
  if (opts.publishAll) spec.publishAll = true;
  if (opts.expose !== undefined) spec.expose = opts.expose;
  if (opts.entrypoint !== undefined) spec.entrypoint = opts.entrypoint;
  if (opts.user !== undefined) spec.user = opts.user;
  const passed = pickCallerEnv(env, callerEnv);
  if (passed) spec.callerEnv = passed;
  return spec;
}

export function buildExecSpec(opts: ExecOptions, cmd: string[], callerEnv: NodeJS.ProcessEnv = process.env): ExecSpec {
  const env = opts.env ?? [];
  const spec: ExecSpec = { cmd, env };
  if (opts.workdir !== undefined) spec.workdir = opts.workdir;
  const passed = pickCallerEnv(env, callerEnv);
  if (passed) spec.callerEnv = passed;
  return spec;
}

/**
 * `-e K` (no `=`) takes K from the caller's environment, as Docker does; only those keys travel to
 * the daemon (never the whole environment). A K the caller does not have is left out, like Docker.
 */
export function pickCallerEnv(env: string[], callerEnv: NodeJS.ProcessEnv): Record<string, string> | undefined {
  const keys = env.filter((e) => !e.includes('='));
  if (keys.length === 0) return undefined;
  const picked: Record<string, string> = {};
  for (const key of keys) {
    const value = callerEnv[key];
    if (value !== undefined) picked[key] = value;
  }
  return picked;
}
