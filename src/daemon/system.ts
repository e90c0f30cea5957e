// The daemon as a service (issue 19): `system info`, the metrics snapshot, and `system reset` (Podman's name:
// every container, network and image of the state root, its default bridge and nftables table, then the
// daemon stops and its state root and run dir go).
import fs from 'node:fs';
import type { InfoJson, PrunedImagesJson } from '../api/types.js';
import { runNft } from '../netns/run.js';
import type { Resolver } from '../resolver/index.js';
import { paths, type Roots } from '../state/paths.js';
import type { StateStore } from '../state/store.js';
import type { ContainerRecord, NetworkRecord } from '../state/types.js';
import type { HostResolv } from './container-files.js';
import { driverFor, firewallTable } from './drivers/index.js';
import { renderMetrics } from './metrics.js';

/** What these read and do of the engine. */
export interface SystemHost {
  readonly roots: Roots;
  readonly containers: ReadonlyMap<string, ContainerRecord>;
  readonly networks: Map<string, NetworkRecord>;
  readonly store: StateStore;
  readonly resolver: Resolver;
  readonly host: HostResolv;
  readonly startedAt: Date;
  readonly reloads: { count: number; seconds: number[] };
  readonly images: { list(): unknown[] };
  readonly cluster: { readonly state: string; describe(): NonNullable<InfoJson['Cluster']>; leave(): Promise<void> } | undefined;
  remove(ref: string, force: boolean): Promise<void>;
  locked<T>(fn: () => Promise<T>): Promise<T>;
  pruneImages(all: boolean): Promise<PrunedImagesJson>;
  log(line: string): void;
}

let version: string | undefined;

/** This build's version, read from package.json once (not at every scrape of /metrics). */
export function daemonVersion(): string {
  if (version === undefined) {
    try {
      version = (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
    } catch {
      version = 'unknown';
    }
  }
  return version;
}

function containerCounts(e: SystemHost): InfoJson['Containers'] {
  const out = { Total: 0, Running: 0, Created: 0, Exited: 0 };
  for (const c of e.containers.values()) {
    out.Total++;
    if (c.state.status === 'running') out.Running++;
    else if (c.state.status === 'created') out.Created++;
    else out.Exited++;
  }
  return out;
}

function networksByDriver(e: SystemHost): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of e.networks.values()) out[n.driver] = (out[n.driver] ?? 0) + 1;
  return out;
}

export function systemInfo(e: SystemHost, metricsAddr: string | undefined): InfoJson {
  const byDriver = networksByDriver(e);
  const cluster = e.cluster?.describe();
  return {
    Version: daemonVersion(),
    NodeVersion: process.version,
    StateRoot: e.roots.stateRoot,
    RunRoot: e.roots.runRoot,
    Socket: paths.socket(e.roots),
    DaemonPid: process.pid,
    DaemonStarted: e.startedAt.toISOString(),
    UptimeSeconds: Math.round((Date.now() - e.startedAt.getTime()) / 1000),
    ResolverUdpPath: e.resolver.stats().udpPath,
    Containers: containerCounts(e),
    Networks: { Total: e.networks.size, ByDriver: byDriver },
    Images: e.images.list().length,
    HostResolvConf: { Path: e.roots.hostResolvConf, Nameservers: [...e.host.parsed.nameservers], Upstreams: e.resolver.upstreamsFor('') },
    ...(cluster ? { Cluster: cluster } : {}),
    ...(metricsAddr ? { MetricsAddr: metricsAddr } : {}),
  };
}

export function metricsText(e: SystemHost): string {
  const c = containerCounts(e);
  return renderMetrics({
    version: daemonVersion(),
    nodeVersion: process.version,
    startedAt: e.startedAt,
    containers: { running: c.Running, created: c.Created, exited: c.Exited },
    networks: networksByDriver(e),
    resolver: e.resolver.stats(),
    resolverDetail: e.resolver.metrics(),
    reloads: e.reloads,
    ...(e.cluster ? { cluster: { state: e.cluster.state } } : {}),
  });
}

/**
 * Remove everything of this state root: containers (killed), networks (an overlay network's side on this host
 * only: the others keep it), images, the default bridge, the nftables table. What was removed, one line each.
 * The caller then stops the daemon, which removes the state root and run dir.
 */
export async function resetSystem(e: SystemHost): Promise<string[]> {
  const removed: string[] = [];
  for (const c of [...e.containers.values()]) {
    await e.remove(c.id, true);
    removed.push(`container ${c.name}`);
  }
  await e.locked(async () => {
    for (const net of [...e.networks.values()]) {
      const failures = await driverFor(net).remove(e.roots, net, { networks: [...e.networks.values()].filter((n) => n.id !== net.id), ports: [] });
      for (const f of failures) e.log(`[daemon] reset: network ${net.name}: ${f}`);
      await e.store.deleteNetwork(net.id);
      e.networks.delete(net.id);
      if (net.device !== '') removed.push(`network ${net.name} (${net.device})`);
    }
    await runNft(`delete table inet ${firewallTable(e.roots)}\n`, { what: 'delete the nftables table' }).catch(() => undefined);
    removed.push(`nftables table inet ${firewallTable(e.roots)}`);
  });
  const images = await e.pruneImages(true);
  for (const d of images.deleted) removed.push(`image ${d}`);
  await e.cluster?.leave();
  return removed;
}
