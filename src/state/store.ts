// Persisted records: one JSON file per network and per container, written atomically (temp + fsync + rename).
import fs from 'node:fs/promises';
import path from 'node:path';
import { DnsnetError } from '../errors.js';
import { paths, type Roots } from './paths.js';
import { migrateContainer, migrateNetwork } from './migrate.js';
import type { ContainerRecord, NetworkRecord } from './types.js';

let tmpCounter = 0;

/** Write a file so that a crash leaves either the old or the new content, never a torn one. */
export async function writeFileAtomic(file: string, data: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Date.now().toString(36)}${(tmpCounter++).toString(36)}`;
  const handle = await fs.open(tmp, 'w', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
  // fsync the directory so the rename itself survives a power cut.
  const dir = await fs.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Temp files of writeFileAtomic that a crash left before their rename: never a record. */
async function removeTempFiles(dir: string, names: string[]): Promise<void> {
  for (const n of names) if (/\.tmp-\d+-[0-9a-z]+$/.test(n)) await fs.rm(path.join(dir, n), { force: true });
}

export interface LoadResult<T> {
  records: T[];
  corrupt: { file: string; why: string }[];
}

async function loadJsonDir<T>(files: string[], kind: string, migrate: (value: Record<string, unknown> & { schema: unknown }) => T): Promise<LoadResult<T>> {
  const records: T[] = [];
  const corrupt: { file: string; why: string }[] = [];
  for (const file of files) {
    try {
      const value = JSON.parse(await fs.readFile(file, 'utf8')) as unknown;
      if (typeof value !== 'object' || value === null || typeof (value as { id?: unknown }).id !== 'string') throw new Error(`not a ${kind} record`);
      records.push(migrate(value as Record<string, unknown> & { schema: unknown }));
    } catch (error) {
      corrupt.push({ file, why: error instanceof Error ? error.message : String(error) });
    }
  }
  return { records, corrupt };
}

export class StateStore {
  constructor(readonly roots: Roots) {}

  async init(): Promise<void> {
    await fs.mkdir(paths.networksDir(this.roots), { recursive: true, mode: 0o700 });
    await fs.mkdir(paths.containersDir(this.roots), { recursive: true, mode: 0o700 });
    await fs.chmod(this.roots.stateRoot, 0o700);
    await fs.mkdir(path.join(this.roots.runRoot, 'logs'), { recursive: true, mode: 0o700 });
    await fs.chmod(this.roots.runRoot, 0o700);
  }

  async loadNetworks(): Promise<LoadResult<NetworkRecord>> {
    const dir = paths.networksDir(this.roots);
    const all = await fs.readdir(dir);
    await removeTempFiles(dir, all);
    const names = all.filter((n) => n.endsWith('.json'));
    return loadJsonDir(names.map((n) => path.join(dir, n)), 'network', migrateNetwork);
  }

  async loadContainers(): Promise<LoadResult<ContainerRecord>> {
    const dir = paths.containersDir(this.roots);
    const ids = await fs.readdir(dir);
    const files: string[] = [];
    for (const id of ids) {
      const file = path.join(dir, id, 'config.json');
      await removeTempFiles(path.join(dir, id), await fs.readdir(path.join(dir, id)).catch(() => []));
      try {
        await fs.access(file);
        files.push(file);
      } catch {
        // A directory without a record: a run that died before its first write; nothing of it is in the kernel.
        if (/^[0-9a-f]{64}$/.test(id)) await fs.rm(path.join(dir, id), { recursive: true, force: true });
      }
    }
    return loadJsonDir(files, 'container', migrateContainer);
  }

  async saveNetwork(net: NetworkRecord): Promise<void> {
    await writeFileAtomic(paths.networkFile(this.roots, net.id), JSON.stringify(net, null, 2) + '\n');
  }

  async deleteNetwork(id: string): Promise<void> {
    await fs.rm(paths.networkFile(this.roots, id), { force: true });
  }

  async saveContainer(c: ContainerRecord): Promise<void> {
    await fs.mkdir(paths.containerDir(this.roots, c.id), { recursive: true, mode: 0o700 });
    await writeFileAtomic(paths.containerFile(this.roots, c.id), JSON.stringify(c, null, 2) + '\n');
  }

  async deleteContainer(id: string): Promise<void> {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new DnsnetError('internal', `delete container ${id}: not an ID`);
    await fs.rm(paths.containerDir(this.roots, id), { recursive: true, force: true });
    await fs.rm(paths.logFile(this.roots, id), { force: true });
  }
}
