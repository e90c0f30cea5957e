// The real command actions: call the daemon through the client and print results the way Docker does.
import { installPodmanHelper, uninstallPodmanHelper } from '../podman/install.js';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ROUTES, routeUrl } from '../api/routes.js';
import type { ContainerJson, EventJson, ImageInspectJson, ImageSummaryJson, InfoJson, Launch, LoadedJson, NetworkJson, PodmanDirJson, PrunedImagesJson, PullJson, RemovedImageJson, RunResult, StatsJson } from '../api/types.js';
import { eventFilters, formatEventLine, parseEventTime } from './events-spec.js';
import { DnsnetError } from '../errors.js';
import { isErrorCode, type Client } from './client.js';
import { forEachRef, reportFailure } from './exit.js';
import { runLaunch } from './launch.js';
import {
  formatContainerTable,
  formatIds,
  formatJson,
  formatJsonArray,
  formatJsonLines,
  formatImageTable,
  formatNetworkTable,
  formatPortLines,
  humanSize,
  pullFooter,
  pullHeader,
  pullStep,
  formatStatsTable,
  formatInfo,
  formatPodmanTable,
  sortContainers,
  sortNetworks,
} from './output.js';
import type { Handlers } from './program.js';

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin?: NodeJS.ReadableStream;
}

/** A writable that hands each chunk, as text, to `onText`. */
function textSink(onText: (text: string) => void): NodeJS.WritableStream {
  const { Writable } = createRequire(import.meta.url)('node:stream') as typeof import('node:stream');
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      onText(chunk.toString('utf8'));
      cb();
    },
  });
}

/** One line from `input` (a confirmation); '' at its end. */
function readLine(input: NodeJS.ReadableStream | undefined): Promise<string> {
  if (!input) return Promise.resolve('');
  return new Promise((resolve) => {
    let text = '';
    const done = () => {
      input.off('data', onData);
      input.off('end', done);
      input.pause();
      resolve(text.split('\n')[0] ?? '');
    };
    const onData = (c: Buffer | string) => {
      text += c.toString();
      if (text.includes('\n')) done();
    };
    input.on('data', onData);
    input.on('end', done);
    input.resume();
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}


export function createHandlers(client: Client, version: string, io: Io = process): Handlers {
  const out = (text: string) => void io.stdout.write(text);
  return {
    async networkCreate(spec) {
      const network = await client.call<NetworkJson>(ROUTES.createNetwork, { body: spec });
      out(network.Id + '\n');
      return 0;
    },
    async networkLs({ quiet, format }) {
      const networks = sortNetworks(await client.call<NetworkJson[]>(ROUTES.listNetworks));
      out(quiet ? formatIds(networks.map((n) => n.Id)) : format === 'json' ? formatJsonLines(networks) : formatNetworkTable(networks));
      return 0;
    },
    async networkInspect(refs) {
      return inspectAll(refs, (r) => client.call<NetworkJson>(ROUTES.inspectNetwork, { ref: r }), out, io.stderr);
    },
    async networkRm(refs) {
      return forEachRef(refs, async (r) => {
        await client.call(ROUTES.removeNetwork, { ref: r });
        out(r + '\n');
      }, io.stderr);
    },
    async networkPrune() {
      const { deleted } = await client.call<{ deleted: string[] }>(ROUTES.pruneNetworks);
      if (deleted.length > 0) out(`Deleted Networks:\n${deleted.map((n) => n + '\n').join('')}`);
      return 0;
    },
    async networkConnect(network, spec) {
      await client.call(ROUTES.connect, { ref: network, body: spec });
      return 0;
    },
    async networkDisconnect(network, container, force) {
      await client.call(ROUTES.disconnect, { ref: network, body: force ? { container, force } : { container } });
      return 0;
    },
    async run(spec) {
      const result = await client.call<RunResult>(ROUTES.run, { body: spec });
      for (const w of result.warnings ?? []) io.stderr.write(`WARNING: ${w}\n`);
      if (spec.detach) {
        out(result.id + '\n');
        return 0;
      }
      if (!result.launch) throw new DnsnetError('internal', `run ${result.name}: the daemon sent no command to start`);
      return runForeground(client, result.id, result.launch);
    },
    async exec(container, spec) {
      const launch = await client.call<Launch>(ROUTES.exec, { ref: container, body: spec });
      return runLaunch(launch);
    },
    async ps({ all, quiet, format }) {
      const containers = sortContainers(await client.call<ContainerJson[]>(ROUTES.listContainers, { query: { all: all === true } }));
      out(quiet ? formatIds(containers.map((c) => c.Id)) : format === 'json' ? formatJsonLines(containers) : formatContainerTable(containers));
      return 0;
    },
    async port(ref, which) {
      const c = await client.call<ContainerJson>(ROUTES.inspectContainer, { ref });
      const only = which === undefined ? undefined : which.includes('/') ? which : `${which}/tcp`;
      const text = formatPortLines(c.NetworkSettings.Ports ?? {}, only);
      if (only !== undefined && text === '') {
        io.stderr.write(`Error: No public port '${only}' published for ${ref}\n`);
        return 1;
      }
      out(text);
      return 0;
    },
    async pull(ref, tlsVerify) {
      out(pullHeader(ref));
      const tty = (io.stdout as NodeJS.WriteStream).isTTY === true;
      let result: PullJson | undefined;
      let failure: { code?: string; message?: string } | undefined;
      let inPlace = false; // a terminal's download bar is on the current line
      await client.streamLines(routeUrl(ROUTES.pull, undefined, { stream: true }), tlsVerify === undefined ? { ref } : { ref, tlsVerify }, (ev) => {
        if (ev.result) result = ev.result as PullJson;
        else if (ev.error) failure = ev.error as typeof failure;
        else if (ev.status === 'Downloading') {
          if (tty) {
            out(`\r${pullStep(ev)}\x1b[K`);
            inPlace = true;
          }
        } else {
          out(`${inPlace ? '\r\x1b[K' : ''}${pullStep(ev)}\n`);
          inPlace = false;
        }
      });
      if (inPlace) out('\n');
      const code = failure?.code;
      if (failure || !result) throw new DnsnetError(isErrorCode(code) ? code : 'internal', failure?.message ?? `pull ${ref}: the daemon's answer ended early`);
      out(pullFooter(result));
      return 0;
    },
    async images({ quiet, format }) {
      const images = await client.call<ImageSummaryJson[]>(ROUTES.listImages);
      out(quiet ? formatIds([...new Set(images.map((i) => i.Id.replace(/^sha256:/, '')))]) : format === 'json' ? formatJsonLines(images) : formatImageTable(images));
      return 0;
    },
    async save(refs, output) {
      if (output !== undefined) {
        await client.call(ROUTES.saveImages, { body: { refs, file: path.resolve(output) } });
        return 0;
      }
      if ((io.stdout as NodeJS.WriteStream).isTTY) throw new DnsnetError('invalid', 'save: cowardly refusing to save to a terminal. Use the -o flag or redirect');
      // The daemon writes a file; the CLI streams it to stdout and removes it.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dnsnet-save-'));
      try {
        const file = path.join(dir, 'images.tar');
        await client.call(ROUTES.saveImages, { body: { refs, file } });
        await pipeline(fs.createReadStream(file), io.stdout);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      return 0;
    },
    async load(input) {
      let dir: string | undefined;
      let file = input === undefined ? undefined : path.resolve(input);
      try {
        if (file === undefined) {
          if (process.stdin.isTTY) throw new DnsnetError('invalid', 'load: requested load from stdin, but stdin is a terminal: use -i FILE or redirect');
          dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dnsnet-load-'));
          file = path.join(dir, 'images.tar');
          await pipeline(process.stdin, fs.createWriteStream(file, { mode: 0o600 }));
        }
        const r = await client.call<LoadedJson>(ROUTES.loadImages, { body: { file } });
        out(r.tags.length > 0 ? r.tags.map((t) => `Loaded image: ${t}\n`).join('') : r.ids.map((i) => `Loaded image ID: ${i}\n`).join(''));
      } finally {
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
      }
      return 0;
    },
    async imagePrune(all) {
      const r = await client.call<PrunedImagesJson>(ROUTES.pruneImages, { query: { all } });
      const lines = [...r.untagged.map((t) => `untagged: ${t}`), ...r.deleted.map((d) => `deleted: ${d}`)];
      out((lines.length > 0 ? `Deleted Images:\n${lines.join('\n')}\n\n` : '') + `Total reclaimed space: ${humanSize(r.reclaimed)}\n`);
      return 0;
    },
    async imageInspect(refs) {
      return inspectAll(refs, (r) => client.call<ImageInspectJson>(ROUTES.inspectImage, { ref: r }), out, io.stderr);
    },
    async rmi(refs, force) {
      return forEachRef(refs, async (r) => {
        const res = await client.call<RemovedImageJson>(ROUTES.removeImage, { ref: r, query: { force } });
        out(res.untagged.map((t) => `Untagged: ${t}\n`).join('') + res.deleted.map((d) => `Deleted: ${d}\n`).join(''));
      }, io.stderr);
    },
    async inspect(refs) {
      return inspectAll(refs, (r) => client.call<ContainerJson>(ROUTES.inspectContainer, { ref: r }), out, io.stderr);
    },
    async stop(refs, timeout) {
      return forEachRef(refs, async (r) => {
        await client.call(ROUTES.stop, { ref: r, body: timeout === undefined ? {} : { timeout } });
        out(r + '\n');
      }, io.stderr);
    },
    async start(refs) {
      return forEachRef(refs, async (r) => {
        await client.call<RunResult>(ROUTES.start, { ref: r });
        out(r + '\n');
      }, io.stderr);
    },
    async rm(refs, force) {
      return forEachRef(refs, async (r) => {
        await client.call(ROUTES.remove, { ref: r, query: { force: force === true } });
        out(r + '\n');
      }, io.stderr);
    },
    async logs(container, follow) {
      await client.stream(routeUrl(ROUTES.logs, container, { follow: follow === true }), io.stdout);
      return 0;
    },
    async stats(format) {
      if (format === 'json') {
        out(formatJson(await client.call<StatsJson>(ROUTES.stats)));
        return 0;
      }
      // The table is /metrics, read as a person reads it: the very numbers a monitoring system scrapes.
      let text = '';
      await client.stream(ROUTES.metrics.path, textSink((t) => (text += t)));
      out(formatStatsTable(text));
      return 0;
    },
    async systemInfo(format) {
      const info = await client.call<InfoJson>(ROUTES.info);
      out(format === 'json' ? formatJson(info) : formatInfo(info));
      return 0;
    },
    async systemReset(force) {
      const info = await client.call<InfoJson>(ROUTES.info);
      if (!force) {
        io.stderr.write(
          `WARNING! This will remove every container (${info.Containers.Total}), network (${info.Networks.Total}) and image (${info.Images}) of ${info.StateRoot},\n` +
            `its default bridge and nftables table, stop its daemon and delete ${info.StateRoot} and ${info.RunRoot}.\nAre you sure you want to continue? [y/N] `,
        );
        const answer = await readLine(io.stdin);
        if (!/^y(es)?$/i.test(answer.trim())) {
          io.stderr.write('aborted: nothing was removed\n');
          return 1;
        }
      }
      const { removed } = await client.call<{ removed: string[] }>(ROUTES.systemReset);
      if (removed.length > 0) out(`Removed:\n${removed.map((n) => n + '\n').join('')}`);
      // The daemon stops once it has answered; wait for it, so the next command starts a fresh one.
      for (let t0 = Date.now(); Date.now() - t0 < 10_000 && isAlive(info.DaemonPid); ) await new Promise((r) => setTimeout(r, 50));
      return 0;
    },
    async events(opts) {
      const params = new URLSearchParams();
      if (opts.since !== undefined) params.set('since', String(parseEventTime('--since', opts.since)));
      if (opts.until !== undefined) params.set('until', String(parseEventTime('--until', opts.until)));
      for (const f of eventFilters(opts.filter)) params.append('filter', f);
      let pending = '';
      const onText = (t: string) => {
        pending += t;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line.trim() === '') continue;
          out(opts.format === 'json' ? `${line}\n` : formatEventLine(JSON.parse(line) as EventJson));
        }
      };
      const query = params.toString();
      await client.stream(`${ROUTES.events.path}${query ? `?${query}` : ''}`, textSink(onText));
      return 0;
    },
    async systemPrune() {
      const { removed } = await client.call<{ removed: string[] }>(ROUTES.systemPrune);
      if (removed.length > 0) out(`Deleted:\n${removed.map((n) => n + '\n').join('')}`);
      return 0;
    },
    async podmanInstall(dir) {
      out(`${installPodmanHelper(dir)}\n`);
      return 0;
    },
    async podmanLs(format) {
      const dirs = await client.call<PodmanDirJson[]>(ROUTES.podmanList);
      out(format === 'json' ? formatJson(dirs) : formatPodmanTable(dirs));
      return 0;
    },
    async podmanUninstall(dir) {
      out(`${uninstallPodmanHelper(dir)}\n`);
      return 0;
    },
    async daemon(opts) {
      // The flags win over the environment; the daemon reads both from there.
      if (opts.clusterStore !== undefined) process.env.DNSNET_CLUSTER_STORE = opts.clusterStore;
      if (opts.clusterAdvertise !== undefined) process.env.DNSNET_CLUSTER_ADVERTISE = opts.clusterAdvertise;
      if (opts.metricsAddr !== undefined) process.env.DNSNET_METRICS_ADDR = opts.metricsAddr;
      await callModule('../daemon/main.js', 'runDaemon');
      return 0;
    },
    async demo() {
      await callModule('../demo/demo.js', 'runDemo');
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
    code = await runLaunch(launch, { started: (pid) => client.call(ROUTES.started, { ref: id, body: { pid } }) });
  } catch (error) {
    // It never ran: the daemon still has to release the sandbox (and remove it with --rm).
    await client.call(ROUTES.exited, { ref: id, body: { exitCode: 125 } }).catch(() => {});
    throw error;
  }
  // The command's status is what the caller asked for; a failed report is said but does not replace it.
  await client.call(ROUTES.exited, { ref: id, body: { exitCode: code } }).catch((error) => reportFailure(error, process.stderr));
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
