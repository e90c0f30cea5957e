// `dnsnet system podman install|uninstall [--dir DIR]`: put an `aardvark-dns` into a directory Podman
// searches for its helpers before its own (/usr/local/libexec/podman comes first in containers-common's
// helper_binaries_dir), so that netavark starts dnsnet's instead of aardvark-dns. Podman's packages are
// never touched: uninstall takes out only a file this wrote.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DnsnetError } from '../errors.js';
import { rootsFromEnv } from '../state/paths.js';

export const DEFAULT_HELPER_DIR = '/usr/local/libexec/podman';
export const HELPER_NAME = 'aardvark-dns';
const MARK = '# dnsnet-podman-helper';

/** The settings a helper started by netavark (or by conmon's cleanup, with an empty environment) must find its daemon with. */
const CARRIED = ['DNSNET_HOST_RESOLV_CONF', 'DNSNET_SYSTEMD_RESOLV_CONF', 'DNSNET_HOST_HOSTS', 'DNSNET_DEFAULT_BRIDGE', 'DNSNET_NATIVE_UDP', 'DNSNET_INSECURE_REGISTRIES'];

function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The helper: a shell script carrying this dnsnet's Node, entry point and state root (the caller's environment still wins). */
export function helperScript(env: NodeJS.ProcessEnv = process.env, node = process.execPath, entry = fileURLToPath(new URL('../cli/aardvark-dns.js', import.meta.url))): string {
  const roots = rootsFromEnv(env);
  const settings: [string, string][] = [
    ['DNSNET_ROOT', roots.stateRoot],
    ['DNSNET_RUN', roots.runRoot],
    ...CARRIED.filter((k) => env[k] !== undefined && env[k] !== '').map((k): [string, string] => [k, env[k]!]),
  ];
  return [
    '#!/bin/sh',
    `${MARK}: aardvark-dns for Podman's netavark, served by the dnsnet daemon.`,
    '# Written by `dnsnet system podman install`; `dnsnet system podman uninstall` removes it.',
    ...settings.map(([k, v]) => `export ${k}="\${${k}:-${v.replace(/["\\$`]/g, '\\$&')}}"`),
    `exec ${quote(node)} ${quote(entry)} "$@"`,
    '',
  ].join('\n');
}

function isOurs(file: string): boolean {
  try {
    return fs.readFileSync(file, 'utf8').split('\n', 3).some((l) => l.startsWith(MARK));
  } catch {
    return false;
  }
}

/** Install (or refresh) the helper in `dir`. Refuses to replace a file that is not ours. Returns what it did, in one line. */
export function installPodmanHelper(dir = DEFAULT_HELPER_DIR): string {
  const file = path.join(path.resolve(dir), HELPER_NAME);
  if (fs.existsSync(file) && !isOurs(file)) throw new DnsnetError('conflict', `podman install: ${file} exists and is not dnsnet's (left as it is)`);
  const text = helperScript();
  const same = fs.existsSync(file) && fs.readFileSync(file, 'utf8') === text;
  if (same) return `${file} is installed already`;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.dnsnet-${process.pid}`;
  try {
    fs.writeFileSync(tmp, text, { mode: 0o755 });
    fs.renameSync(tmp, file);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw new DnsnetError('invalid', `podman install: write ${file}: ${(error as Error).message}`);
  }
  return `installed ${file}: netavark now starts dnsnet's resolver for Podman networks with DNS (an aardvark-dns already running keeps serving until its networks are empty)`;
}

/** Remove the helper from `dir` if it is ours. */
export function uninstallPodmanHelper(dir = DEFAULT_HELPER_DIR): string {
  const file = path.join(path.resolve(dir), HELPER_NAME);
  if (!fs.existsSync(file)) return `${file} is not installed`;
  if (!isOurs(file)) throw new DnsnetError('conflict', `podman uninstall: ${file} is not dnsnet's (left as it is)`);
  fs.rmSync(file);
  return `removed ${file}: Podman uses its own aardvark-dns again for new servers`;
}
