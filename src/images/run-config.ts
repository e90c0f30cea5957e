// What `run IMAGE [CMD...]` runs, as Docker applies an image's config (pure): the entrypoint and command,
// the environment, the working directory, and the user (a name looked up in the image's /etc/passwd and
// /etc/group, or numbers).
import { DnsnetError } from '../errors.js';
import type { ImageRunConfig } from './store.js';

export interface RunOverrides {
  /** The words after IMAGE (replace the image's Cmd when given). */
  cmd: string[];
  /** --entrypoint ('' clears the image's). */
  entrypoint?: string | undefined;
  /** -w */
  workdir?: string | undefined;
  /** -u / --user */
  user?: string | undefined;
}

export interface ImageRun {
  cmd: string[];
  /** The image's Env (then -e overrides them, key by key). */
  env: string[];
  workdir: string;
  user: string;
}

/**
 * Docker's rules: --entrypoint replaces the image's Entrypoint and drops its Cmd; words after IMAGE replace
 * Cmd; what runs is Entrypoint + Cmd. Nothing to run is an error (Docker: "no command specified").
 */
export function imageRun(config: ImageRunConfig, o: RunOverrides): ImageRun {
  const entrypoint = o.entrypoint !== undefined ? (o.entrypoint === '' ? [] : [o.entrypoint]) : (config.Entrypoint ?? []);
  const cmd = o.cmd.length > 0 ? o.cmd : o.entrypoint !== undefined ? [] : (config.Cmd ?? []);
  const all = [...entrypoint, ...cmd];
  if (all.length === 0) throw new DnsnetError('invalid', 'run: no command specified (the image has no Entrypoint or Cmd, and none was given)');
  return { cmd: all, env: config.Env ?? [], workdir: o.workdir ?? (config.WorkingDir || '/'), user: o.user ?? config.User ?? '' };
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  home: string;
}

function table(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

/**
 * `user`, `uid`, `user:group`, `uid:gid` (and mixes) -> numbers, from the image's passwd and group files.
 * A bare uid not in passwd runs with gid 0, as Docker does; a name that is not there is an error.
 */
export function resolveUser(spec: string, passwd: string, group: string): ResolvedUser {
  if (spec === '' || spec === 'root' || spec === '0') return { uid: 0, gid: 0, home: '/root' };
  const [u = '', g] = spec.split(':');
  const users = table(passwd);
  const byName = users.find((r) => r[0] === u);
  const byUid = /^\d+$/.test(u) ? users.find((r) => r[2] === u) : undefined;
  const entry = byName ?? byUid;
  if (!entry && !/^\d+$/.test(u)) throw new DnsnetError('invalid', `run: unable to find user ${u}: no matching entries in the image's /etc/passwd`);
  const uid = Number(entry?.[2] ?? u);
  let gid = Number(entry?.[3] ?? 0);
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const grp = table(group).find((r) => r[0] === g);
      if (!grp) throw new DnsnetError('invalid', `run: unable to find group ${g}: no matching entries in the image's /etc/group`);
      gid = Number(grp[2]);
    }
  }
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid < 0 || gid < 0) throw new DnsnetError('invalid', `run: invalid user "${spec}"`);
  return { uid, gid, home: entry?.[5] || '/' };
}
