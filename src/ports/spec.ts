// `-p/--publish`, `--expose` and `-P` as Docker reads them (pure): every form of the flag, ranges, IPv6 host
// addresses in brackets, and Docker's one-line errors. The rules are go-connections' nat.ParsePortSpec.
import { DnsnetError } from '../errors.js';
import { isIpLiteral } from '../ip/index.js';

export type Proto = 'tcp' | 'udp' | 'sctp';
const PROTOS: readonly string[] = ['tcp', 'udp', 'sctp'];

/** One container port asked to be published: HostConfig.PortBindings' entry, as given. */
export interface PortBindingRecord {
  proto: Proto;
  containerPort: number;
  /** '' = every address of the host. */
  hostIp: string;
  /** '' = an ephemeral port; 'N'; or 'N-M', a pool to take one from (only for a single container port). */
  hostPort: string;
}

/** `80/tcp`: a key of Config.ExposedPorts and NetworkSettings.Ports. */
export function portKey(port: number, proto: Proto): string {
  return `${port}/${proto}`;
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

/** `N` or `N-M` (N <= M). */
export function parsePortRange(text: string): [number, number] | undefined {
  const dash = text.indexOf('-');
  const start = parsePort(dash < 0 ? text : text.slice(0, dash));
  const end = dash < 0 ? start : parsePort(text.slice(dash + 1));
  if (start === undefined || end === undefined || end < start) return undefined;
  return [start, end];
}

function splitProto(text: string): [string, string] {
  const slash = text.lastIndexOf('/');
  return slash < 0 ? [text, 'tcp'] : [text.slice(0, slash), text.slice(slash + 1)];
}

function invalid(flag: string, raw: string, why: string): DnsnetError {
  return new DnsnetError('invalid', `run: invalid ${flag} "${raw}": ${why}`);
}

/** One `-p` value -> its bindings, one per container port. */
export function parsePublish(raw: string): PortBindingRecord[] {
  const parts = raw.split(':');
  const last = parts.length - 1;
  const [cport, protoText] = splitProto(parts[last] ?? '');
  const hostPortText = parts.length >= 2 ? (parts[last - 1] ?? '') : '';
  let ip = parts.length >= 3 ? parts.slice(0, last - 1).join(':') : '';
  if (ip.startsWith('[')) {
    if (!ip.endsWith(']')) throw invalid('-p', raw, `invalid IP address ${ip}`);
    ip = ip.slice(1, -1);
  }
  if (ip !== '' && !isIpLiteral(ip)) throw invalid('-p', raw, `invalid IP address: ${ip}`);
  if (cport === '') throw invalid('-p', raw, 'no port specified');
  const crange = parsePortRange(cport);
  if (!crange || crange[0] === 0) throw invalid('-p', raw, `invalid containerPort: ${cport}`);
  const hrange = hostPortText === '' ? undefined : parsePortRange(hostPortText);
  if (hostPortText !== '' && !hrange) throw invalid('-p', raw, `invalid hostPort: ${hostPortText}`);
  const proto = protoText.toLowerCase();
  if (!PROTOS.includes(proto)) throw invalid('-p', raw, `invalid proto: ${protoText}`);
  const count = crange[1] - crange[0];
  if (hrange && hrange[1] - hrange[0] !== count && count !== 0) {
    throw invalid('-p', raw, `invalid ranges specified for container and host Ports: ${cport} and ${hostPortText}`);
  }
  const out: PortBindingRecord[] = [];
  for (let i = 0; i <= count; i++) {
    // A host range with one container port is a pool: one port of it is taken.
    const hostPort = !hrange ? '' : count === 0 && hrange[0] !== hrange[1] ? `${hrange[0]}-${hrange[1]}` : String(hrange[0] + i);
    out.push({ proto: proto as Proto, containerPort: crange[0] + i, hostIp: ip, hostPort });
  }
  return out;
}

/** One `--expose` value (`80`, `80/udp`, `8000-8010/tcp`) -> its port keys. */
export function parseExpose(raw: string): string[] {
  const [ports, protoText] = splitProto(raw);
  const proto = protoText.toLowerCase();
  if (!PROTOS.includes(proto)) throw invalid('--expose', raw, `invalid proto: ${protoText}`);
  const range = parsePortRange(ports);
  if (!range || range[0] === 0) throw invalid('--expose', raw, `invalid range format for --expose: ${raw}`);
  const keys: string[] = [];
  for (let p = range[0]; p <= range[1]; p++) keys.push(portKey(p, proto as Proto));
  return keys;
}

/** Config.ExposedPorts: --expose and every published container port, in order, once each. */
export function exposedPorts(expose: string[], bindings: PortBindingRecord[]): string[] {
  return [...new Set([...expose.flatMap(parseExpose), ...bindings.map((b) => portKey(b.containerPort, b.proto))])];
}

/** What a run publishes: -p as given, and with -P every exposed port not already published, on an ephemeral port. */
export function publishedBindings(bindings: PortBindingRecord[], exposed: string[], publishAll: boolean): PortBindingRecord[] {
  if (!publishAll) return bindings;
  const taken = new Set(bindings.map((b) => portKey(b.containerPort, b.proto)));
  const extra = exposed
    .filter((k) => !taken.has(k))
    .map((k): PortBindingRecord => {
      const [port, proto] = k.split('/');
      return { proto: proto as Proto, containerPort: Number(port), hostIp: '', hostPort: '' };
    });
  return [...bindings, ...extra];
}
