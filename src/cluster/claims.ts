// Addresses of an overlay network, claimed in etcd so that no two hosts ever hand out the same one
// (issue 18; the driver that calls this is not built yet). One key per address,
// `<prefix>ipam/<network id>/<ip>`, made by the transaction that succeeds only if the key does not exist,
// attached to the claiming host's lease: a host that dies (or is cut off past its lease) loses its claims,
// and others may then take them. A host that comes back claims its addresses again by the same transaction:
// one taken meanwhile is refused, and its container must get another.
import { DnsnetError } from '../errors.js';
import { allocateAddress } from '../ipam/index.js';
import type { IpamConfig } from '../state/types.js';
import type { Etcd } from './etcd.js';

export interface ClaimOwner {
  etcd: Etcd;
  /** The cluster's key prefix, ending in `/`. */
  prefix: string;
  /** This host (its advertise address), written into each claim. */
  host: string;
  /** This host's lease: claims go with it. */
  lease: string;
}

export interface Claim {
  ip: string;
  /** The claim key's mod revision: a release deletes only this claim, never one made since. */
  modRevision: number;
}

interface ClaimValue {
  host: string;
  container: string;
}

/** Attempts at the lowest free address when other hosts keep taking it first. */
const MAX_RACES = 64;

const keyOf = (o: ClaimOwner, networkId: string, ip: string): string => `${o.prefix}ipam/${networkId}/${ip}`;

/** The addresses of `networkId` claimed now, by whom. */
export async function claimedAddresses(o: ClaimOwner, networkId: string): Promise<Map<string, ClaimValue & { modRevision: number }>> {
  const { kvs } = await o.etcd.range(`${o.prefix}ipam/${networkId}/`);
  const out = new Map<string, ClaimValue & { modRevision: number }>();
  for (const kv of kvs) {
    const ip = kv.key.slice(kv.key.lastIndexOf('/') + 1);
    try {
      out.set(ip, { ...(JSON.parse(kv.value) as ClaimValue), modRevision: kv.modRevision });
    } catch {
      out.set(ip, { host: '?', container: '?', modRevision: kv.modRevision });
    }
  }
  return out;
}

/**
 * Claim an address of `config` for `container`: `requested` (--ip), or the lowest free one. A requested
 * address held by anyone is refused (naming the holder); a free one lost to a faster host is retried on the
 * next free address.
 */
export async function claimAddress(o: ClaimOwner, networkId: string, config: IpamConfig, container: string, requested?: string): Promise<Claim> {
  const value = JSON.stringify({ host: o.host, container } satisfies ClaimValue);
  for (let race = 0; race < MAX_RACES; race++) {
    const taken = await claimedAddresses(o, networkId);
    const holder = requested !== undefined ? taken.get(requested) : undefined;
    if (holder) throw new DnsnetError('conflict', `address ${requested} is already in use by ${holder.container.slice(0, 12)} on host ${holder.host}`);
    // allocateAddress checks the request (in the subnet, not reserved, not taken as far as we know).
    const ip = allocateAddress(config, taken.keys(), requested);
    if (await o.etcd.create(keyOf(o, networkId, ip), value, o.lease)) {
      const kv = await o.etcd.get(keyOf(o, networkId, ip));
      return { ip, modRevision: kv?.modRevision ?? 0 };
    }
    if (requested !== undefined) {
      const holder = (await claimedAddresses(o, networkId)).get(ip);
      throw new DnsnetError('conflict', `address ${ip} is already in use${holder ? ` by ${holder.container.slice(0, 12)} on host ${holder.host}` : ''}`);
    }
  }
  throw new DnsnetError('exhausted', `no address of ${config.subnet} could be claimed: other hosts took each one first ${MAX_RACES} times`);
}

/** Claim `ip` again for `container` (a host back from being cut off, a daemon restarted): false when someone else holds it now. */
export async function reclaimAddress(o: ClaimOwner, networkId: string, ip: string, container: string): Promise<Claim | undefined> {
  const key = keyOf(o, networkId, ip);
  const value = JSON.stringify({ host: o.host, container } satisfies ClaimValue);
  if (await o.etcd.create(key, value, o.lease)) return { ip, modRevision: (await o.etcd.get(key))?.modRevision ?? 0 };
  const kv = await o.etcd.get(key);
  if (!kv) return reclaimAddress(o, networkId, ip, container); // gone meanwhile: try once more
  const held = JSON.parse(kv.value) as ClaimValue;
  if (held.host !== o.host || held.container !== container) return undefined;
  // Still ours (this host's earlier lease had not expired): move it to the current lease.
  return (await o.etcd.replace(key, kv.modRevision, value, o.lease)) ? { ip, modRevision: (await o.etcd.get(key))?.modRevision ?? 0 } : undefined;
}

/** Let go of a claim of ours (a claim made since by another host is left alone). */
export async function releaseAddress(o: ClaimOwner, networkId: string, claim: Claim): Promise<boolean> {
  return o.etcd.deleteIf(keyOf(o, networkId, claim.ip), claim.modRevision);
}
