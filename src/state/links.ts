// `--link NAME[:ALIAS]`: the one parser of the flag (and of schema-1 records), and Docker's inspect form.
import type { LinkRecord } from './types.js';

export type Link = LinkRecord;

/** `NAME[:ALIAS]`, split at the first colon (a name never holds one). */
export function parseLink(text: string): Link {
  const colon = text.indexOf(':');
  const target = colon < 0 ? text : text.slice(0, colon);
  const alias = colon < 0 ? text : text.slice(colon + 1);
  return { target: target.startsWith('/') ? target.slice(1) : target, alias };
}

export function formatLink(link: Link): string {
  return `${link.target}:${link.alias}`;
}

/** Docker's `HostConfig.Links` entry of a legacy link: `/target:/linker/alias`. */
export function inspectLink(linker: string, link: Link): string {
  return `/${link.target}:/${linker}/${link.alias}`;
}
