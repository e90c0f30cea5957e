// Matching records against the kernel: at start-up (records loaded, kernel objects made again after a
// reboot, live containers re-adopted, dead ones cleaned up, half-done runs rolled back) and for
// `system prune` (kernel objects of this root that no record owns).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { listLinks } from '../bridge/index.js';
import { deleteLink, deleteNetns, isOrphanNetns } from '../netns/sandbox.js';
import { isContainerNetns, NETNS_DIR, netnsName, netnsPath, ownerTag } from '../state/kernel-names.js';
import { paths } from '../state/paths.js';
import type { StateStore } from '../state/store.js';
import type { ContainerRecord, NetworkRecord } from '../state/types.js';
import type { World } from './plan.js';
import type { Sandboxes } from './sandboxes.js';
import { defaultNetworkSpec, driverFor, predefinedNetwork } from './drivers/index.js';
import { netnsKind } from '../state/modes.js';
import { isAlive } from './proc.js';
import { signal, sleep } from './supervisor.js';

/** What reconciling needs of the engine: its state, and the steps it shares with `run` and `rm`. */
export interface Reconcilable extends World {
  readonly networks: Map<string, NetworkRecord>;
  readonly containers: Map<string, ContainerRecord>;
  readonly store: StateStore;
  readonly sandboxes: Pick<Sandboxes, 'registerDns' | 'teardown'>;
  log(line: string): void;
  markExited(c: ContainerRecord, exitCode: number, error?: string): Promise<void>;
}

/**
 * Load the records; make the default network, or the bridges a reboot took. The firewall is applied by the
 * caller once the containers are known (their published ports are in it): until then the table the last
 * daemon left keeps working.
 */
export async function loadState(e: Reconcilable): Promise<void> {
  await e.store.init();
  const nets = await e.store.loadNetworks();
  for (const bad of nets.corrupt) e.log(`[state] skipping corrupt network record ${bad.file}: ${bad.why}`);
  for (const n of nets.records) e.networks.set(n.id, n);
  if (![...e.networks.values()].some((n) => n.isDefault)) {
    const driver = driverFor('bridge');
    const net = await driver.plan(defaultNetworkSpec(), [...e.networks.values()], e.host.parsed.nameservers, {
      isDefault: true,
      device: e.roots.defaultBridge,
    });
    await driver.create(e.roots, net, { networks: [...e.networks.values(), net], ports: [] });
    await e.store.saveNetwork(net);
    e.networks.set(net.id, net);
  } else {
    // After a reboot the records remain but the kernel objects are gone: make them again.
    for (const net of e.networks.values()) {
      const driver = driverFor(net);
      if (driver.exists(net)) continue;
      try {
        await driver.create(e.roots, net, { networks: [...e.networks.values()], ports: [] });
      } catch (error) {
        // A local network's bridge is needed to start at all; an overlay network's is made again when the
        // daemon reads it from its cluster's store (it stays listed, and its containers cannot start, until then).
        if (driver.scope !== 'global') throw error;
        e.log(`[state] overlay network ${net.name}: ${(error as Error).message}`);
      }
    }
  }
  // Docker's other pre-defined networks: `host` and `none` (a root made before them gets them now).
  for (const driver of ['host', 'null'] as const) {
    if ([...e.networks.values()].some((n) => n.driver === driver)) continue;
    const net = predefinedNetwork(driver);
    await e.store.saveNetwork(net);
    e.networks.set(net.id, net);
  }
  const ctrs = await e.store.loadContainers();
  for (const bad of ctrs.corrupt) e.log(`[state] skipping corrupt container record ${bad.file}: ${bad.why}`);
  for (const c of ctrs.records) e.containers.set(c.id, c);
}

/** Re-adopt live containers, clean up what died while the daemon was away, roll back half-done runs. */
export async function recover(e: Reconcilable): Promise<void> {
  for (const c of [...e.containers.values()]) {
    const hasNetns = netnsKind(c) !== 'own' || fs.existsSync(netnsPath(c.id));
    if (c.state.status === 'running' && isAlive(c.state.pid, c.state.startTime) && hasNetns) {
      try {
        // A socket helper of the daemon that died may still hold 127.0.0.11:53 in that netns for a
        // moment (it leaves within 500 ms of being orphaned): retry the bind for up to 3 s.
        for (let attempt = 0; ; attempt++) {
          try {
            await e.sandboxes.registerDns(c);
            break;
          } catch (error) {
            if (attempt >= 15 || !/EADDRINUSE/.test((error as Error).message)) throw error;
            await sleep(200);
          }
        }
        e.log(`[daemon] re-adopted container ${c.name} (pid ${c.state.pid})`);
      } catch (error) {
        e.log(`[daemon] re-adopt ${c.name}: ${(error as Error).message}`);
      }
      continue;
    }
    if (c.state.status === 'created') {
      e.log(`[daemon] rolling back half-done run of ${c.name}`);
      await e.sandboxes.teardown(c);
      await e.store.deleteContainer(c.id);
      e.containers.delete(c.id);
      continue;
    }
    if (c.state.status === 'running' && isAlive(c.state.pid, c.state.startTime)) {
      // Alive but its netns was deleted while we were away: it has no network any more.
      e.log(`[daemon] container ${c.name}: its network namespace was deleted while the daemon was away; stopping it`);
      signal(c.state.pid, 'SIGKILL');
      await e.markExited(c, 137, 'its network namespace was deleted outside dnsnet');
    } else if (c.state.status === 'running') {
      e.log(`[daemon] container ${c.name} died while the daemon was away`);
      await e.markExited(c, 255, 'exit status unknown: the process ended while the daemon was not running');
    } else {
      await e.sandboxes.teardown(c); // idempotent: leaves nothing of an exited container in the kernel
      c.endpoints = [];
    }
  }
}

/** Remove kernel objects that look like this root's but that no record owns (dead state). The caller holds the lock. */
export async function pruneSystem(e: Reconcilable): Promise<string[]> {
  const removed: string[] = [];
  const live = new Set([...e.containers.values()].filter((c) => c.state.status !== 'exited').map((c) => netnsName(c.id)));
  let entries: string[] = [];
  try {
    entries = await fsp.readdir(NETNS_DIR);
  } catch {
    entries = [];
  }
  // Only netns whose name matches a container directory of THIS root, so another root's stay.
  const ours = new Set((await fsp.readdir(paths.containersDir(e.roots))).map((id) => netnsName(id)));
  for (const ns of entries) {
    if (isContainerNetns(ns) && ours.has(ns) && !live.has(ns)) {
      await deleteNetns(ns);
      removed.push(`netns ${ns}`);
    }
  }
  // Netns of a container whose record is gone (lost or corrupted): its eth0's host peer carries this
  // root's owner tag, or it is empty. Looked at before the tagged links go, which takes eth0 along.
  const tag = ownerTag(e.roots.stateRoot);
  const hostLinks = await listLinks(); // one read for both loops: a link gone meanwhile is no error
  for (const ns of entries) {
    if (!isContainerNetns(ns) || ours.has(ns) || live.has(ns)) continue;
    if (await isOrphanNetns(ns, tag, hostLinks)) {
      await deleteNetns(ns);
      removed.push(`netns ${ns}`);
    }
  }
  // Links carrying this root's owner tag that no record owns (a record lost or corrupted).
  const devices = new Set([...e.networks.values()].map((n) => n.device));
  const veths = new Set([...e.containers.values()].flatMap((c) => c.endpoints.map((ep) => ep.hostVeth)));
  for (const link of hostLinks) {
    if (link.alias !== tag || devices.has(link.ifname) || veths.has(link.ifname)) continue;
    await deleteLink(link.ifname);
    removed.push(`${link.kind ?? 'link'} ${link.ifname}`);
  }
  for (const c of e.containers.values()) {
    if (c.state.status === 'exited' && c.endpoints.length > 0) {
      await e.sandboxes.teardown(c);
      c.endpoints = [];
      await e.store.saveContainer(c);
      removed.push(`endpoints of ${c.name}`);
    }
  }
  return removed;
}
