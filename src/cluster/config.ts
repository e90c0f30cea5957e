// A daemon's cluster settings (pure): `--cluster-store etcd://IP:PORT[,IP:PORT...]` and `--cluster-advertise IP`
// (Docker's classic names), or DNSNET_CLUSTER_STORE / DNSNET_CLUSTER_ADVERTISE. Neither: single-host dnsnet,
// no store. DNSNET_CLUSTER_TTL (seconds, 1-10, default 10) is the lease of the host: how long the other
// hosts keep its containers' names after it went silent.
import { DnsnetError } from '../errors.js';
import { ipVersion } from '../ip/index.js';

export interface ClusterConfig {
  /** `http://IP:PORT` of each etcd member. */
  endpoints: string[];
  /** This host's underlay address: its VXLAN source, and its name in the store. */
  advertise: string;
  /** Key prefix in etcd, ending in `/`. */
  prefix: string;
  /** Lease TTL, s. */
  ttl: number;
}

export const DEFAULT_TTL = 10;
const PREFIX = '/dnsnet/';

function parseStore(text: string): string[] {
  const m = /^etcd:\/\/(.+)$/.exec(text.trim());
  if (!m) throw new DnsnetError('invalid', `invalid cluster store "${text}": expected etcd://IP:PORT[,IP:PORT...]`);
  return m[1]!.split(',').map((member) => {
    const hp = /^(\[[0-9a-fA-F:.]+\]|[^:/[\]]+):(\d{1,5})\/?$/.exec(member.trim());
    const port = hp ? Number(hp[2]) : 0;
    if (!hp || port < 1 || port > 65535) throw new DnsnetError('invalid', `invalid cluster store member "${member}": expected IP:PORT`);
    return `http://${hp[1]}:${port}`;
  });
}

/** The settings in `env` (the daemon's flags are put there first); undefined when no cluster is asked for. */
export function clusterConfig(env: Record<string, string | undefined>): ClusterConfig | undefined {
  const store = env.DNSNET_CLUSTER_STORE?.trim() || undefined;
  const advertise = env.DNSNET_CLUSTER_ADVERTISE?.trim() || undefined;
  if (store === undefined && advertise === undefined) return undefined;
  if (store === undefined) throw new DnsnetError('invalid', '--cluster-advertise needs --cluster-store (DNSNET_CLUSTER_STORE)');
  if (advertise === undefined) throw new DnsnetError('invalid', '--cluster-store needs --cluster-advertise IP (DNSNET_CLUSTER_ADVERTISE): the address other hosts reach this one at');
  if (ipVersion(advertise) !== 4) throw new DnsnetError('invalid', `invalid cluster advertise address "${advertise}": expected this host's IPv4 address on the underlay`);
  const ttlText = env.DNSNET_CLUSTER_TTL?.trim();
  const ttl = ttlText ? Number(ttlText) : DEFAULT_TTL;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 10) throw new DnsnetError('invalid', `invalid DNSNET_CLUSTER_TTL "${ttlText}": expected whole seconds from 1 to 10`);
  return { endpoints: parseStore(store), advertise, prefix: PREFIX, ttl };
}
