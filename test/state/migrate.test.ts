// Schema 1 records read as schema 2: links and extra hosts parsed; other schemas refused (pure).
import { describe, expect, it } from 'vitest';
import { migrateContainer, migrateNetwork } from '../../src/state/migrate.js';
import { SCHEMA_VERSION } from '../../src/state/types.js';

const v1 = {
  schema: 1,
  id: 'a'.repeat(64),
  name: 'linker',
  links: ['db:database', '/web:site', 'cache'],
  extraHosts: ['h:1.2.3.4', 'gw:host-gateway', 'v6:[::1]', 'v6b:fe80::1'],
  endpoints: [],
};

describe('schema migration', () => {
  it('a schema-1 container: links and extra hosts parsed, the rest as it was', () => {
    const c = migrateContainer({ ...v1 });
    expect(c.schema).toBe(SCHEMA_VERSION);
    expect(c.links).toEqual([
      { target: 'db', alias: 'database' },
      { target: 'web', alias: 'site' },
      { target: 'cache', alias: 'cache' },
    ]);
    expect(c.extraHosts).toEqual([
      { name: 'h', ip: '1.2.3.4' },
      { name: 'gw', ip: 'host-gateway' },
      { name: 'v6', ip: '::1' },
      { name: 'v6b', ip: 'fe80::1' },
    ]);
    expect(c.name).toBe('linker');
  });

  it('a current record passes as it is; another schema, or a malformed field, is refused', () => {
    const now = { ...v1, schema: SCHEMA_VERSION, links: [{ target: 'db', alias: 'database' }], extraHosts: [] };
    expect(migrateContainer(now)).toEqual(now);
    expect(() => migrateContainer({ ...v1, schema: 99 })).toThrow(/schema version 99/);
    expect(() => migrateContainer({ ...v1, links: 'db' })).toThrow(/links is not a list/);
    expect(migrateNetwork({ schema: 1, id: 'b'.repeat(64) }).schema).toBe(SCHEMA_VERSION);
    expect(() => migrateNetwork({ schema: 3, id: 'b'.repeat(64) })).toThrow(/schema version 3/);
  });
});
