// The real command actions: call the daemon through the client and print results the way Docker does.
import fs from 'node:fs';
import type { ContainerJson, Launch, NetworkJson, RunResult, StatsJson } from '../daemon/api-types.js';
import { DnsnetError } from '../errors.js';
import type { Client } from './client.js';
import { forEachRef, reportFailure } from './exit.js';
import { runLaunch } from './launch.js';
import {
  formatContainerTable,
  formatIds,
  formatJson,
  formatJsonArray,
  formatJsonLines,
  formatNetworkTable,
  formatStatsTable,
  sortContainers,
  sortNetworks,
} from './output.js';
import type { Handlers } from './program.js';

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const ref = (r: string) => encodeURIComponent(r);

export function createHandlers(client: Client, version: string, io: Io = process): Handlers {
  const out = (text: string) => void io.stdout.write(text);
  return {
    async networkCreate(spec) {
      const network = await client.post<NetworkJson>('/networks', spec);
      out(network.Id + '\n');
      return 0;
    },
    async networkLs({ quiet, format }) {
      const networks = sortNetworks(await client.get<NetworkJson[]>('/networks'));
      out(quiet ? formatIds(networks.map((n) => n.Id)) : format === 'json' ? formatJsonLines(networks) : formatNetworkTable(networks));
      return 0;
    },
    async networkInspect(refs) {
      return inspectAll(refs, (r) => client.get<NetworkJson>(`/networks/${ref(r)}`), out, io.stderr);
    },
    async networkRm(refs) {
      return forEachRef(refs, async (r) => {
        await client.delete(`/networks/${ref(r)}`);
        out(r + '\n');
      }, io.stderr);
    },
    async networkPrune() {
      const { deleted } = await client.post<{ deleted: string[] }>('/networks/prune');
      if (deleted.length > 0) out(`Deleted Networks:\n${deleted.map((n) => n + '\n').join('')}`);
      return 0;
    },
    async networkConnect(network, spec) {
      await client.post(`/networks/${ref(network)}/connect`, spec);
      return 0;
    },
    async networkDisconnect(network, container, force) {
      await client.post(`/networks/${ref(network)}/disconnect`, force ? { container, force } : { container });
      return 0;
    },
    async run(spec) {
      const result = await client.post<RunResult>('/containers', spec);
      for (const w of result.warnings ?? []) io.stderr.write(`WARNING: ${w}\n`);
      if (spec.detach) {
        out(result.id + '\n');
        return 0;
      }
      if (!result.launch) throw new DnsnetError('internal', `run ${result.name}: the daemon sent no command to start`);
      return runForeground(client, result.id, result.launch);
    },
    async exec(container, spec) {
      const launch = await client.post<Launch>(`/containers/${ref(container)}/exec`, spec);
      return runLaunch(launch);
    },
    async ps({ all, quiet, format }) {
      const containers = sortContainers(await client.get<ContainerJson[]>(all ? '/containers?all=1' : '/containers'));
      out(quiet ? formatIds(containers.map((c) => c.Id)) : format === 'json' ? formatJsonLines(containers) : formatContainerTable(containers));
      return 0;
    },
    async inspect(refs) {
      return inspectAll(refs, (r) => client.get<ContainerJson>(`/containers/${ref(r)}/json`), out, io.stderr);
    },
    async stop(refs, timeout) {
      return forEachRef(refs, async (r) => {
        await client.post(`/containers/${ref(r)}/stop`, timeout === undefined ? {} : { timeout });
        out(r + '\n');
      }, io.stderr);
    },
    async start(refs) {
      return forEachRef(refs, async (r) => {
        await client.post<RunResult>(`/containers/${ref(r)}/start`);
        out(r + '\n');
      }, io.stderr);
    },
    async rm(refs, force) {
      return forEachRef(refs, async (r) => {
        await client.delete(`/containers/${ref(r)}${force ? '?force=1' : ''}`);
        out(r + '\n');
      }, io.stderr);
    },
    async logs(container, follow) {
      await client.stream(`/containers/${ref(container)}/logs${follow ? '?follow=1' : ''}`, io.stdout);
      return 0;
    },
    async stats(format) {
      const stats = await client.get<StatsJson>('/stats');
      out(format === 'json' ? formatJson(stats) : formatStatsTable(stats));
      return 0;
    },
    async systemPrune() {
      const { removed } = await client.post<{ removed: string[] }>('/system/prune');
      if (removed.length > 0) out(`Deleted:\n${removed.map((n) => n + '\n').join('')}`);
      return 0;
    },
    async daemon() {
      await callModule('../daemon/main.js', 'runDaemon');
      return 0;
    },
    async demo() {
      await callModule('../daemon/demo.js', 'runDemo');
      return 0;
    },
    async version() {
      out(`dnsnet ${version}\n`);
      return 0;
    },
  };
}

/** Foreground `run`: spawn the sandboxed command here and tell the daemon when it started and ended. */
async function runForeground(client: Client, id: string, launch: Launch): Promise<number> {
  let code: number;
  try {
    code = await runLaunch(launch, { started: (pid) => client.post(`/containers/${id}/started`, { pid }) });
  } catch (error) {
    // It never ran: the daemon still has to release the sandbox (and remove it with --rm).
    await client.post(`/containers/${id}/exited`, { exitCode: 125 }).catch(() => {});
    throw error;
  }
  // The command's status is what the caller asked for; a failed report is said but does not replace it.
  await client.post(`/containers/${id}/exited`, { exitCode: code }).catch((error) => reportFailure(error, process.stderr));
  return code;
}

/** Docker's inspect: print the array of what was found, an error line per ref that was not, 125 if any. */
async function inspectAll<T>(refs: string[], get: (ref: string) => Promise<T>, out: (text: string) => void, stderr: NodeJS.WritableStream): Promise<number> {
  const found: T[] = [];
  const code = await forEachRef(refs, async (r) => void found.push(await get(r)), stderr);
  out(formatJsonArray(found));
  return code;
}

/**
 * The daemon and demo are loaded only when asked for, through a specifier tsc does not resolve, so
 * the CLI neither pays for their imports nor depends on them at build time.
 */
async function callModule(specifier: string, name: string): Promise<void> {
  const mod = (await import(specifier)) as Record<string, unknown>;
  const fn = mod[name];
  if (typeof fn !== 'function') throw new DnsnetError('internal', `load ${specifier}: it exports no ${name}()`);
  await (fn as () => Promise<void>)();
}

export function readVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}
