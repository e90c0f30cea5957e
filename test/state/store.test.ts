import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rootsFromEnv } from '../../src/state/paths.js';
import { StateStore, writeFileAtomic } from '../../src/state/store.js';
import { SCHEMA_VERSION, type NetworkRecord } from '../../src/state/types.js';

let dir: string;
let store: StateStore;

const net = (id: string, name: string): NetworkRecord => ({
  schema: SCHEMA_VERSION,
  id,
  name,
  created: '2026-01-01T00:00:00.000Z',
  driver: 'bridge',
  isDefault: false,
  internal: false,
  enableIPv6: false,
  mtu: 1500,
  device: `dn-${id.slice(0, 12)}`,
  ipam: [{ subnet: '10.0.0.0/24', gateway: '10.0.0.1' }],
  options: {},
});

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dnsnet-store-'));
  store = new StateStore(rootsFromEnv({ DNSNET_ROOT: path.join(dir, 'state'), DNSNET_RUN: path.join(dir, 'run') }));
  await store.init();
});

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('state store', () => {
  it('round-trips records and keeps the state root private', async () => {
    await store.saveNetwork(net('a'.repeat(64), 'one'));
    const { records, corrupt } = await store.loadNetworks();
    expect(records.map((n) => n.name)).toEqual(['one']);
    expect(corrupt).toEqual([]);
    expect(fs.statSync(path.join(dir, 'state')).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dir, 'state', 'networks', `${'a'.repeat(64)}.json`)).mode & 0o777).toBe(0o600);
  });

  it.each([
    ['truncated JSON', '{"schema":1,"id":"b'],
    ['not an object', '42'],
    ['another schema version', JSON.stringify({ ...net('b'.repeat(64), 'x'), schema: 99 })],
    ['binary garbage', '\u0000\u0001\u00ff'],
  ])('reports a corrupt record (%s) by file name and still loads the rest', async (_what, text) => {
    await store.saveNetwork(net('a'.repeat(64), 'good'));
    const bad = path.join(dir, 'state', 'networks', `${'b'.repeat(64)}.json`);
    fs.writeFileSync(bad, text);
    const { records, corrupt } = await store.loadNetworks();
    expect(records.map((n) => n.name)).toEqual(['good']);
    expect(corrupt.map((c) => c.file)).toEqual([bad]);
  });

  it('reads a schema-1 container record from disk as schema 2, and saves it as such', async () => {
    const id = 'c'.repeat(64);
    const dirOf = path.join(dir, 'state', 'containers', id);
    fs.mkdirSync(dirOf, { recursive: true });
    fs.writeFileSync(path.join(dirOf, 'config.json'), JSON.stringify({ schema: 1, id, name: 'old', links: ['db:database'], extraHosts: ['gw:host-gateway'], endpoints: [] }));
    const { records, corrupt } = await store.loadContainers();
    expect(corrupt).toEqual([]);
    expect(records[0]).toMatchObject({ schema: SCHEMA_VERSION, links: [{ target: 'db', alias: 'database' }], extraHosts: [{ name: 'gw', ip: 'host-gateway' }] });
    await store.saveContainer(records[0]!);
    expect(JSON.parse(fs.readFileSync(path.join(dirOf, 'config.json'), 'utf8')).schema).toBe(SCHEMA_VERSION);
  });

  it('writes atomically: no temp file is left and the old content survives a failed write', async () => {
    const file = path.join(dir, 'f.json');
    await writeFileAtomic(file, 'old');
    await writeFileAtomic(file, 'new');
    expect(fs.readFileSync(file, 'utf8')).toBe('new');
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    await expect(writeFileAtomic(path.join(dir, 'missing', 'f.json'), 'x')).rejects.toThrow();
    expect(fs.readFileSync(file, 'utf8')).toBe('new');
  });
});
