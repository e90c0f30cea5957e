// Build a container's /etc/resolv.conf from the parsed host file and the flags: override, transform, render.
import { isLinkLocal6, isLoopback, ipVersion } from '../ip/index.js';
import { parseResolvConf, type ResolvConf } from './parse.js';
import { isValidNdots } from './validate.js';

export const EMBEDDED_RESOLVER = '127.0.0.11';
export const SYSTEMD_RESOLVED_STUB = '127.0.0.53';
export const SYSTEMD_RESOLVED_PATH = '/run/systemd/resolve/resolv.conf';
export const FALLBACK_NAMESERVERS = ['8.8.8.8', '8.8.4.4'];
export const FALLBACK_NAMESERVERS6 = ['2001:4860:4860::8888', '2001:4860:4860::8844'];

export interface ResolvConfInput {
  host: ResolvConf; // the parsed host file
  hostPath: string; // the file it came from (after the systemd-resolved redirect)
  mode: 'embedded' | 'legacy' | 'host'; // user-defined network (resolver on 127.0.0.11) | default network `bridge` | the host's netns
  ipv6: boolean; // the container's network has IPv6
  dns: string[]; // --dns (empty = none)
  dnsSearch: string[]; // --dns-search; ['.'] = no search list
  dnsOptions: string[]; // --dns-option
}

export interface GeneratedResolvConf {
  text: string;
  upstreams: string[]; // embedded mode: where the resolver forwards, in order; legacy mode: []
  nameservers: string[]; // what the file lists
}

type NdotsFrom = 'host' | 'flag' | 'dnsnet' | undefined;

/** Where the embedded resolver forwards a container's queries, and from which netns it dials them. */
export interface EmbeddedUpstreams {
  servers: string[];
  /** Docker's rule: --dns servers are dialled from the container's own netns, the host's from the host's. */
  fromContainer: boolean;
  /** No nameserver at all: Docker's public fallback. */
  fallback: boolean;
}

/** The one rule for the embedded resolver's upstreams: --dns, else every host nameserver, else the fallback. */
export function embeddedUpstreams(host: ResolvConf, dns: string[]): EmbeddedUpstreams {
  if (dns.length > 0) return { servers: [...dns], fromContainer: true, fallback: false };
  if (host.nameservers.length > 0) return { servers: [...host.nameservers], fromContainer: false, fallback: false };
  return { servers: [...FALLBACK_NAMESERVERS], fromContainer: false, fallback: true };
}

// What the transform did, for the trailing comments.
interface Notes {
  overridden: string[];
  dropped: string[]; // legacy: host nameservers left out, with the reason
  fallback: boolean;
  ndotsFrom: NdotsFrom;
  invalidNdots: string[];
}

const isNdots = (o: string): boolean => o === 'ndots' || o.startsWith('ndots:');

/** Pure: the same input always gives the same bytes, so a hash tells a user's edit apart. */
export function buildResolvConf(input: ResolvConfInput): GeneratedResolvConf {
  const { host } = input;
  // Override: each flag replaces its whole part of the host file.
  const overridden: string[] = [];
  if (input.dns.length > 0) overridden.push('nameservers (--dns)');
  if (input.dnsSearch.length > 0) overridden.push('search (--dns-search)');
  if (input.dnsOptions.length > 0) overridden.push('options (--dns-option)');
  const servers = input.dns.length > 0 ? input.dns : host.nameservers;
  const search = input.dnsSearch.length > 0 ? input.dnsSearch.filter((d) => d !== '.') : host.search;
  let options = input.dnsOptions.length > 0 ? input.dnsOptions : host.options;
  const optionsFrom: NdotsFrom = input.dnsOptions.length > 0 ? 'flag' : 'host';

  const notes: Notes = { overridden, dropped: [], fallback: false, ndotsFrom: undefined, invalidNdots: [] };
  let nameservers: string[];
  let upstreams: string[];
  if (input.mode === 'embedded') {
    // The host's nameservers are dialled from the host netns, so every one works, loopback included.
    const up = embeddedUpstreams(host, input.dns);
    upstreams = up.servers;
    notes.fallback = up.fallback;
    nameservers = [EMBEDDED_RESOLVER];
    // Names on the network are single labels: ndots:0 sends them to the resolver as they are.
    notes.invalidNdots = options.filter((o) => isNdots(o) && !isValidNdots(o));
    options = options.filter((o) => !isNdots(o) || isValidNdots(o));
    if (options.some(isValidNdots)) {
      notes.ndotsFrom = optionsFrom;
    } else {
      options = [...options, 'ndots:0'];
      notes.ndotsFrom = 'dnsnet';
    }
  } else if (input.mode === 'host') {
    // In the host's netns every host nameserver works, loopback ones included: nothing is filtered.
    upstreams = [];
    nameservers = input.dns.length > 0 ? [...input.dns] : [...host.nameservers];
  } else {
    upstreams = [];
    nameservers = input.dns.length > 0 ? [...input.dns] : filterLegacy(host.nameservers, input.ipv6, notes.dropped);
    if (nameservers.length === 0) {
      nameservers = input.ipv6 ? [...FALLBACK_NAMESERVERS, ...FALLBACK_NAMESERVERS6] : [...FALLBACK_NAMESERVERS];
      notes.fallback = true;
    }
    if (options.some(isNdots)) notes.ndotsFrom = optionsFrom;
  }

  const body = [
    ...nameservers.map((ns) => `nameserver ${ns}`),
    ...(search.length > 0 ? [`search ${search.join(' ')}`] : []),
    ...(options.length > 0 ? [`options ${options.join(' ')}`] : []),
    ...host.other,
  ];
  const text = [...body, '', ...renderNotes(input, upstreams, notes).map((l) => `# ${l}`)].join('\n') + '\n';
  return { text, upstreams, nameservers };
}

// Default network: the container's own netns has no route to the host's loopback, nor IPv6
// unless the network has it; a link-local address is kept (it names an on-link server).
function filterLegacy(servers: string[], ipv6: boolean, dropped: string[]): string[] {
  return servers.filter((ns) => {
    if (isLoopback(ns)) {
      dropped.push(`${ns} (loopback)`);
      return false;
    }
    if (ipVersion(ns) === 6 && !ipv6 && !isLinkLocal6(ns)) {
      dropped.push(`${ns} (the network has no IPv6)`);
      return false;
    }
    return true;
  });
}

function renderNotes(input: ResolvConfInput, upstreams: string[], notes: Notes): string[] {
  const { host } = input;
  const empty = host.nameservers.length + host.search.length + host.options.length + host.other.length === 0;
  const from = `${printable(input.hostPath)}${empty ? ' (empty or missing)' : ''}`;
  const lines: string[] = [];
  if (input.mode === 'embedded') {
    lines.push(`Generated by dnsnet from ${from} for a user-defined network.`);
    lines.push(`${EMBEDDED_RESOLVER} is dnsnet's embedded resolver: it answers container names and forwards the rest.`);
    // Docker's rule: the host's nameservers are dialled from the host's netns (so its 127.0.0.53 works),
    // --dns servers from the container's own (its loopback, a DNS server container on an --internal network).
    if (input.dns.length > 0) lines.push(`Upstreams (--dns), queried from the container's network namespace: ${upstreams.join(' ')}`);
    else lines.push(`Upstreams, queried from the host: ${upstreams.map((u) => `host(${u})`).join(' ')}${notes.fallback ? ' (no nameserver found: public fallback)' : ''}`);
  } else if (input.mode === 'host') {
    lines.push(`Generated by dnsnet from ${from} for a container on the host's network.`);
    lines.push(input.dns.length > 0 ? 'Nameservers: from --dns, as given.' : "Nameservers: the host's, as they are (its loopback servers are reachable here).");
  } else {
    lines.push(`Generated by dnsnet from ${from} for the default network (no embedded resolver).`);
    if (input.dns.length > 0) lines.push('Nameservers: from --dns, as given.');
    else lines.push("Nameservers: a filtered copy of the host's, without those a container cannot reach.");
    if (notes.dropped.length > 0) lines.push(`Left out: ${notes.dropped.join(', ')}`);
    if (notes.fallback) lines.push('No usable nameserver left: public fallback.');
  }
  if (notes.overridden.length > 0) lines.push(`Set by flags: ${notes.overridden.join(', ')}`);
  if (notes.ndotsFrom === 'host') lines.push('ndots taken from the host file.');
  if (notes.ndotsFrom === 'flag') lines.push('ndots taken from --dns-option.');
  if (notes.ndotsFrom === 'dnsnet') lines.push('ndots:0 added by dnsnet, as no valid ndots was given.');
  if (notes.invalidNdots.length > 0) lines.push(`Invalid ndots dropped: ${notes.invalidNdots.join(' ')}`);
  if (input.dns.length === 0 && host.invalid.length > 0) {
    lines.push(`Invalid nameservers in the host file, ignored: ${host.invalid.join(' ')}`);
  }
  return lines;
}

// Comments must stay one line each whatever a path holds.
function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]/g, '?');
}

/**
 * systemd-resolved's stub file lists only 127.0.0.53; its real upstreams are in another file.
 * Use that one (when it could be read) if the host file names no other nameserver.
 */
export function chooseHostResolvConf(
  text: string,
  path: string,
  systemdText: string | undefined,
  systemdPath: string = SYSTEMD_RESOLVED_PATH,
): { text: string; path: string } {
  const ns = parseResolvConf(text).nameservers;
  const onlyStub = ns.length > 0 && ns.every((n) => n === SYSTEMD_RESOLVED_STUB);
  return onlyStub && systemdText !== undefined ? { text: systemdText, path: systemdPath } : { text, path };
}
