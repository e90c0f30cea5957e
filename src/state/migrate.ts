// Records an older dnsnet wrote, brought to this schema as they are read (saved in it at their next write).
// Schema 1 kept `--link` and `--add-host` as the strings given; 2 keeps them parsed.
import { splitAddHost } from '../resolvconf/validate.js';
import { parseLink } from './links.js';
import { SCHEMA_VERSION, type ContainerRecord, type NetworkRecord } from './types.js';

type Raw = Record<string, unknown> & { schema: unknown };

function strings(v: unknown, what: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`${what} is not a list of strings`);
  return v as string[];
}

/** A container record of schema 1 or 2, as schema 2; throws on another schema or a malformed schema-1 field. */
export function migrateContainer(value: Raw): ContainerRecord {
  if (value.schema === 1) {
    return {
      ...(value as unknown as ContainerRecord),
      schema: SCHEMA_VERSION,
      links: strings(value.links, 'links').map(parseLink),
      // Validated when the container was run; host-gateway stays symbolic, as schema 2 keeps it.
      extraHosts: strings(value.extraHosts, 'extraHosts').map(splitAddHost),
    };
  }
  if (value.schema !== SCHEMA_VERSION) throw new Error(`schema version ${String(value.schema)}, expected ${SCHEMA_VERSION}`);
  return value as unknown as ContainerRecord;
}

/** A network record of schema 1 or 2, as schema 2 (nothing of a network changed). */
export function migrateNetwork(value: Raw): NetworkRecord {
  if (value.schema === 1) return { ...(value as unknown as NetworkRecord), schema: SCHEMA_VERSION };
  if (value.schema !== SCHEMA_VERSION) throw new Error(`schema version ${String(value.schema)}, expected ${SCHEMA_VERSION}`);
  return value as unknown as NetworkRecord;
}
