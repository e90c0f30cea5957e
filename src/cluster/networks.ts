// Overlay networks as the cluster knows them (issue 18; the driver that makes their devices is not built
// yet): one record per network in etcd, made in one transaction together with the claims of its name, its
// subnet and its VNI, so two hosts creating networks at once never share any of the three. Not attached to
// any lease: a network outlives the hosts that use it, until `network rm`.
import crypto from 'node:crypto';
import { DnsnetError } from '../errors.js';
import { formatCidr, nthAddress, overlaps, parseCidr } from '../ip/index.js';
import type { Etcd } from './etcd.js';

export interface OverlayNetwork {
  id: string;
  name: string;
  driver: 'overlay';
  vni: number;
  subnet: string;
  gateway: string;
  internal: boolean;
  attachable: boolean;
  created: string;
}

export interface OverlaySpec {
  name: string;
  subnet?: string;
  internal?: boolean;
  attachable?: boolean;
}

/** Docker's overlay VNIs start at 4096 (below: left to other VXLAN users of the underlay). */
export const FIRST_VNI = 4096;
const MAX_VNI = 0xffffff;
/** Docker's default pool for overlay subnets: 10.0.0.0/8 in /24s. */
const POOL = { base: '10.0.0.0/8', size: 24 };
const MAX_RACES = 32;

const keys = (prefix: string, n: Pick<OverlayNetwork, 'id' | 'name' | 'subnet' | 'vni'>) => ({
  record: `${prefix}networks/${n.id}`,
  name: `${prefix}network-names/${n.name}`,
  subnet: `${prefix}subnets/${n.subnet.replace('/', '_')}`,
  vni: `${prefix}vnis/${n.vni}`,
});

export async function listOverlayNetworks(etcd: Etcd, prefix: string): Promise<OverlayNetwork[]> {
  return (await etcd.range(`${prefix}networks/`)).kvs.map((kv) => JSON.parse(kv.value) as OverlayNetwork);
}

/** The lowest VNI from FIRST_VNI up that is not in `taken`. */
function freeVni(taken: Set<number>): number {
  for (let v = FIRST_VNI; v <= MAX_VNI; v++) if (!taken.has(v)) return v;
  throw new DnsnetError('exhausted', 'no free VNI left');
}

/** The first /24 of the pool that overlaps no subnet in `taken`. */
function freeSubnet(taken: string[]): string {
  const base = parseCidr(POOL.base);
  const count = 2 ** (POOL.size - base.prefix);
  for (let i = 0; i < count; i++) {
    const candidate = `${nthAddress(base, BigInt(i) * 256n)}/${POOL.size}`;
    if (!taken.some((t) => overlaps(parseCidr(t), parseCidr(candidate)))) return candidate;
  }
  throw new DnsnetError('exhausted', `no free /${POOL.size} left in ${POOL.base} for an overlay network`);
}

/**
 * Create an overlay network cluster-wide: its record and the claims of its name, subnet (given, or the first
 * free /24 of 10.0.0.0/8) and VNI (the lowest free from 4096), in one transaction; a lost race for a subnet or
 * VNI someone else took meanwhile is retried, a name or a given subnet someone holds is refused. `avoid`: the
 * creating host's own subnets (its networks, its routes), which a chosen subnet skips and a given one may
 * not overlap (the other hosts' are not known here).
 */
export async function createOverlayNetwork(etcd: Etcd, prefix: string, spec: OverlaySpec, avoid: string[] = []): Promise<OverlayNetwork> {
  const given = spec.subnet !== undefined ? formatCidr(parseCidr(spec.subnet)) : undefined;
  const local = given ? avoid.find((a) => overlaps(parseCidr(a), parseCidr(given))) : undefined;
  if (given && local) throw new DnsnetError('conflict', `subnet ${given} overlaps ${local}, a network of this host`);
  for (let race = 0; race < MAX_RACES; race++) {
    const existing = await listOverlayNetworks(etcd, prefix);
    if (existing.some((n) => n.name === spec.name)) throw new DnsnetError('conflict', `network with name ${spec.name} already exists`);
    if (given) {
      const clash = existing.find((n) => overlaps(parseCidr(n.subnet), parseCidr(given)));
      if (clash) throw new DnsnetError('conflict', `subnet ${given} overlaps network ${clash.name} (${clash.subnet})`);
    }
    const subnet = given ?? freeSubnet([...existing.map((n) => n.subnet), ...avoid]);
    const net: OverlayNetwork = {
      id: crypto.randomBytes(32).toString('hex'),
      name: spec.name,
      driver: 'overlay',
      vni: freeVni(new Set(existing.map((n) => n.vni))),
      subnet,
      gateway: nthAddress(parseCidr(subnet), 1n),
      internal: spec.internal === true,
      attachable: spec.attachable === true,
      created: new Date().toISOString(),
    };
    const k = keys(prefix, net);
    const made = await etcd.createAll([
      { key: k.name, value: net.id },
      { key: k.subnet, value: net.id },
      { key: k.vni, value: net.id },
      { key: k.record, value: JSON.stringify(net) },
    ]);
    if (made) return net;
    // Someone was faster with one of them: look again (a name taken now is refused above).
  }
  throw new DnsnetError('exhausted', `network ${spec.name}: other hosts kept taking its subnet or VNI first`);
}

/**
 * Remove an overlay network everywhere: refused while any host holds an address on it (its claims, see
 * claims.ts). What remains: a claim made between that check and the removal (Docker's cluster store had the
 * same window); the driver closes it by claiming only while the network's record exists.
 */
export async function removeOverlayNetwork(etcd: Etcd, prefix: string, name: string): Promise<void> {
  const net = (await listOverlayNetworks(etcd, prefix)).find((n) => n.name === name);
  if (!net) throw new DnsnetError('not-found', `network ${name} not found`);
  const claims = (await etcd.range(`${prefix}ipam/${net.id}/`)).kvs;
  if (claims.length > 0) {
    const hosts = [...new Set(claims.map((kv) => (JSON.parse(kv.value) as { host: string }).host))];
    throw new DnsnetError('conflict', `error while removing network: network ${name} id ${net.id.slice(0, 12)} has active endpoints (on ${hosts.join(', ')})`);
  }
  const k = keys(prefix, net);
  await etcd.deleteAll([k.record, k.name, k.subnet, k.vni]);
}
