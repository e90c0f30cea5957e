// Check the DNS and host flags of `run` (--dns, --dns-search, --dns-option, --add-host, --hostname).
import { DnsnetError } from '../errors.js';
import { isIpLiteral } from '../ip/index.js';

/** Docker's `--add-host NAME:host-gateway`: the default network's gateway. */
export const HOST_GATEWAY = 'host-gateway';

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
// Search domains in the wild carry underscores (`_msdcs.example.com`); resolvers do not mind.
const SEARCH_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
const OPTION = /^[A-Za-z0-9_-]+(?::[^\s]+)?$/;
const MAX_NAME = 253;

function invalid(flag: string, value: string, why: string): DnsnetError {
  return new DnsnetError('invalid', `invalid ${flag} value ${JSON.stringify(value)}: ${why}`);
}

/** Why `name` is not a valid name made of `label`s, or undefined when it is. */
function nameProblem(name: string, label: RegExp): string | undefined {
  if (name === '') return 'empty';
  if (name.length > MAX_NAME) return `longer than ${MAX_NAME} characters`;
  const bad = name.split('.').find((l) => !label.test(l));
  if (bad === undefined) return undefined;
  return bad === '' ? 'empty label' : `bad label ${JSON.stringify(bad)}`;
}

/** An IP literal (IPv6 may carry a `%zone`), returned as given. */
export function parseDnsServer(s: string): string {
  if (!isIpLiteral(s)) throw invalid('--dns', s, 'not an IP address');
  return s;
}

/** A domain name (one trailing dot allowed) or `.` (= no search list). */
export function validateDnsSearch(d: string): string {
  if (d === '.') return d;
  const why = nameProblem(d.endsWith('.') ? d.slice(0, -1) : d, SEARCH_LABEL);
  if (why !== undefined) throw invalid('--dns-search', d, `not a domain name (${why})`);
  return d;
}

/** `name` or `name:value`, no spaces; ndots must be a number the resolvers honour (0..15). */
export function validateDnsOption(o: string): string {
  if (!OPTION.test(o)) throw invalid('--dns-option', o, 'want name or name:value, without spaces');
  if ((o === 'ndots' || o.startsWith('ndots:')) && !isValidNdots(o)) {
    throw invalid('--dns-option', o, 'ndots needs a whole number from 0 to 15');
  }
  return o;
}

/** `ndots:N` with N a whole number 0..15 (glibc's RES_MAXNDOTS). */
export function isValidNdots(option: string): boolean {
  const m = /^ndots:(\d{1,2})$/.exec(option);
  return m !== null && Number(m[1]) <= 15;
}

/**
 * A hostname per RFC 1123: dot-separated labels of letters, digits and inner hyphens. `flag` names
 * the flag in the error (e.g. '--network-alias').
 */
export function validateHostname(h: string, flag = '--hostname'): string {
  const why = nameProblem(h, LABEL);
  if (why !== undefined) throw invalid(flag, h, `not a valid hostname (${why})`);
  return h;
}

/**
 * A network alias or link alias: a domain name whose labels may also hold `_`, as Docker accepts them and
 * Compose registers service names (often with `_`) as aliases. `flag` names the flag in the error.
 */
export function validateAlias(a: string, flag: string): string {
  const why = nameProblem(a.endsWith('.') ? a.slice(0, -1) : a, SEARCH_LABEL);
  if (why !== undefined) throw invalid(flag, a, `not a valid alias (${why})`);
  return a;
}

/**
 * `NAME:IP`, split at the first colon so an IPv6 address needs no brackets (Docker's `[::1]` is
 * accepted too). `host-gateway` becomes `hostGateway`, which is undefined when there is none.
 */
export function parseAddHost(s: string, hostGateway: string | undefined): { name: string; ip: string } {
  const h = splitAddHost(s);
  if (h.ip !== HOST_GATEWAY) return h;
  if (hostGateway === undefined) throw invalid('--add-host', s, 'no host gateway address is known');
  return { name: h.name, ip: hostGateway };
}

/** `NAME:IP` checked and split, `host-gateway` kept as it is (what a record stores). */
export function splitAddHost(s: string): { name: string; ip: string } {
  const colon = s.indexOf(':');
  if (colon === -1) throw invalid('--add-host', s, 'want NAME:IP');
  const name = s.slice(0, colon);
  let ip = s.slice(colon + 1);
  const why = nameProblem(name, LABEL);
  if (why !== undefined) throw invalid('--add-host', s, `not a valid hostname (${why})`);
  if (ip === HOST_GATEWAY) return { name, ip };
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (!isIpLiteral(ip)) throw invalid('--add-host', s, `${JSON.stringify(ip)} is not an IP address`);
  return { name, ip };
}
