// netavark's aardvark-dns configuration directory (pure parsing, and one read of the directory).
//
// netavark writes one file per network with DNS enabled, named after the network (newer netavark adds
// `%int` to an internal network's name). The first line: the listen IPs, comma-separated, then optionally a
// space and the network's DNS servers. Every further line is one container on that network:
//   <id> <ipv4,...> <ipv6,...> <name,alias,...>[ <dns server,...>]
// with an empty field for a family the container has no address in. `aardvark.pid` lives there too.
import fs from 'node:fs/promises';
import path from 'node:path';
import { DnsnetError } from '../errors.js';
import { ipVersion, normaliseAddress } from '../ip/index.js';

export const PID_FILE = 'aardvark.pid';
const INTERNAL_SUFFIX = '%int';

export interface PodmanContainer {
  id: string;
  ipv4: string[];
  ipv6: string[];
  /** The container's name first, then its aliases; lower case, as aardvark-dns keeps them. */
  names: string[];
  /** Its own DNS servers (`podman run --dns`), empty when none. */
  dns: string[];
}

export interface PodmanNetwork {
  name: string;
  internal: boolean;
  listenIps: string[];
  /** The network's DNS servers (`podman network create --dns`), empty when none. */
  dns: string[];
  containers: PodmanContainer[];
}

function addresses(field: string, family: 4 | 6 | 0, what: string, where: string): string[] {
  if (field === '') return [];
  return field.split(',').map((text) => {
    const v = ipVersion(text);
    if (v === 0 || (family !== 0 && v !== family)) throw new DnsnetError('invalid', `${where}: ${what} ${JSON.stringify(text)} is no IPv${family || '4/6'} address`);
    return normaliseAddress(text);
  });
}

function networkName(fileName: string): string {
  return fileName.endsWith(INTERNAL_SUFFIX) ? fileName.slice(0, -INTERNAL_SUFFIX.length) : fileName;
}

/** One network file: its name is the file's (without `%int`). Throws DnsnetError('invalid') naming the file and line. */
export function parseNetworkFile(fileName: string, text: string): PodmanNetwork {
  const internal = fileName.endsWith(INTERNAL_SUFFIX);
  const name = networkName(fileName);
  const lines = text.split('\n').filter((l) => l !== '');
  const header = lines.shift();
  if (header === undefined) throw new DnsnetError('invalid', `${fileName}: empty network file (no listen addresses)`);
  const [listen = '', servers = ''] = header.split(' ');
  const listenIps = addresses(listen, 0, 'listen address', `${fileName} line 1`);
  if (listenIps.length === 0) throw new DnsnetError('invalid', `${fileName}: no listen addresses`);
  const network: PodmanNetwork = { name, internal, listenIps, dns: addresses(servers, 0, 'DNS server', `${fileName} line 1`), containers: [] };
  lines.forEach((line, i) => {
    const where = `${fileName} line ${i + 2}`;
    const parts = line.split(' ');
    if (parts.length < 4) throw new DnsnetError('invalid', `${where}: too few fields (id, IPv4s, IPv6s, names)`);
    const [id = '', v4 = '', v6 = '', names = '', dns = ''] = parts;
    if (id === '') throw new DnsnetError('invalid', `${where}: no container id`);
    const nameList = names.split(',').filter((n) => n !== '').map((n) => n.toLowerCase());
    if (nameList.length === 0) throw new DnsnetError('invalid', `${where}: no names`);
    network.containers.push({
      id: id.toLowerCase(),
      ipv4: addresses(v4, 4, 'IPv4 address', where),
      ipv6: addresses(v6, 6, 'IPv6 address', where),
      names: nameList,
      dns: addresses(dns, 0, 'DNS server', where),
    });
  });
  return network;
}

/** The files of a config directory that are networks: not the pid file, no dotfiles, no directories. */
export function isNetworkFile(name: string): boolean {
  return name !== PID_FILE && !name.startsWith('.');
}

export interface ConfigDir {
  networks: PodmanNetwork[];
  /** Files that could not be read or parsed: the network's name and why (the rest is served). */
  errors: { network: string; message: string }[];
}

/** Read every network file of `dir`. A missing directory is an error; a file removed meanwhile is skipped. */
export async function readConfigDir(dir: string): Promise<ConfigDir> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw new DnsnetError('invalid', `config directory ${dir}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (error as Error).message}`);
  }
  const out: ConfigDir = { networks: [], errors: [] };
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (!e.isFile() || !isNetworkFile(e.name)) continue;
    let text: string;
    try {
      text = await fs.readFile(path.join(dir, e.name), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') out.errors.push({ network: networkName(e.name), message: `${e.name}: ${(error as Error).message}` });
      continue;
    }
    try {
      out.networks.push(parseNetworkFile(e.name, text));
    } catch (error) {
      out.errors.push({ network: networkName(e.name), message: (error as Error).message });
    }
  }
  return out;
}
