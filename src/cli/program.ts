// The command tree (Docker's names and flags) built with commander; actions hand typed values to Handlers.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { ConnectSpec, ExecSpec, NetworkCreateSpec, RunSpec } from '../api/types.js';
import { buildNetworkCreateSpec, type NetworkCreateOptions } from './network-spec.js';
import { buildExecSpec, buildRunSpec, type ExecOptions, type RunOptions } from './run-spec.js';

export type Format = 'table' | 'json';

export interface ListOptions {
  quiet: boolean;
  format: Format;
}

/** What each command does once its flags are parsed; each resolves to the process exit code. */
export interface Handlers {
  networkCreate(spec: NetworkCreateSpec): Promise<number>;
  networkLs(opts: ListOptions): Promise<number>;
  networkInspect(refs: string[]): Promise<number>;
  networkRm(refs: string[]): Promise<number>;
  networkPrune(): Promise<number>;
  networkConnect(network: string, spec: ConnectSpec): Promise<number>;
  networkDisconnect(network: string, container: string, force: boolean): Promise<number>;
  run(spec: RunSpec): Promise<number>;
  exec(container: string, spec: ExecSpec): Promise<number>;
  ps(opts: ListOptions & { all: boolean }): Promise<number>;
  inspect(refs: string[]): Promise<number>;
  port(ref: string, port: string | undefined): Promise<number>;
  pull(ref: string, tlsVerify: boolean | undefined): Promise<number>;
  images(opts: ListOptions): Promise<number>;
  imageInspect(refs: string[]): Promise<number>;
  rmi(refs: string[], force: boolean): Promise<number>;
  save(refs: string[], output: string | undefined): Promise<number>;
  load(input: string | undefined): Promise<number>;
  imagePrune(all: boolean): Promise<number>;
  stop(refs: string[], timeout: number | undefined): Promise<number>;
  start(refs: string[]): Promise<number>;
  rm(refs: string[], force: boolean): Promise<number>;
  logs(ref: string, follow: boolean): Promise<number>;
  stats(format: Format): Promise<number>;
  systemPrune(): Promise<number>;
  systemInfo(format: Format): Promise<number>;
  systemReset(force: boolean): Promise<number>;
  events(opts: { since?: string; until?: string; filter: string[]; format: Format }): Promise<number>;
  podmanInstall(dir: string): Promise<number>;
  podmanLs(format: Format): Promise<number>;
  podmanUninstall(dir: string): Promise<number>;
  daemon(opts: { clusterStore?: string; clusterAdvertise?: string; metricsAddr?: string }): Promise<number>;
  demo(): Promise<number>;
  version(): Promise<number>;
}

export interface ProgramOptions {
  version: string;
  /** Receives the exit code of the action that ran (commander drops action return values). */
  onExit(code: number): void;
  /** Where `-e K` looks K up. */
  env?: NodeJS.ProcessEnv;
  /** Where help and version text go (default: stdout / stderr). */
  output?: { writeOut(text: string): void; writeErr(text: string): void };
}

/**
 * Build the `dnsnet` program. It never exits the process: usage errors throw a CommanderError
 * (exitOverride) and are printed by exit.ts, like every other error.
 */
export function buildProgram(handlers: Handlers, options: ProgramOptions): Command {
  const env = options.env ?? process.env;
  const done = (code: number) => options.onExit(code);
  const program = new Command('dnsnet')
    .description('Docker-style user-defined container networks and container DNS')
    .version(`dnsnet ${options.version}`, '-v, --version', 'print the version')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ ...options.output, outputError: () => {} }) // exit.ts prints the one error line
    .helpCommand(false);

  const network = program.command('network').description('manage networks').helpCommand(false);
  network
    .command('create')
    .description('create a network')
    .argument('<name>')
    .option('--subnet <cidr>', 'subnet (repeatable: one IPv4, one IPv6)', collect)
    .option('--gateway <ip>', 'gateway for the subnet of its family (repeatable)', collect)
    .option('--ip-range <cidr>', 'allocate container addresses from this sub-range')
    .option('--ipv6', 'enable IPv6')
    .option('--internal', 'no route out of the network')
    .option('-o, --opt <key=value>', 'driver option (mtu=N)', collectMap)
    .option('--attachable', 'overlay: containers may attach (all may in dnsnet; recorded for inspect)')
    .option('-d, --driver <driver>', 'driver: bridge, or overlay (spans the hosts of a cluster; host and null are the pre-defined networks host and none)', 'bridge')
    .action(async (name: string, opts: NetworkCreateOptions) => done(await handlers.networkCreate(buildNetworkCreateSpec(name, opts))));
  network
    .command('ls')
    .alias('list')
    .description('list networks')
    .option('-q, --quiet', 'only network IDs')
    .addOption(formatOption())
    .action(async (opts: { quiet?: boolean; format: Format }) => done(await handlers.networkLs({ quiet: opts.quiet ?? false, format: opts.format })));
  network
    .command('inspect')
    .description('show networks as JSON')
    .argument('<network...>')
    .action(async (refs: string[]) => done(await handlers.networkInspect(refs)));
  network
    .command('rm')
    .alias('remove')
    .description('remove networks')
    .argument('<network...>')
    .action(async (refs: string[]) => done(await handlers.networkRm(refs)));
  network
    .command('prune')
    .description('remove networks no container uses')
    .option('-f, --force', 'do not ask (dnsnet never asks)')
    .action(async () => done(await handlers.networkPrune()));
  network
    .command('connect')
    .description('attach a container to a network')
    .argument('<network>')
    .argument('<container>')
    .option('--alias <alias>', 'network alias (repeatable)', collect)
    .option('--ip <ip>', 'IPv4 address')
    .action(async (net: string, container: string, opts: { alias?: string[]; ip?: string }) => {
      const spec: ConnectSpec = { container, aliases: opts.alias ?? [] };
      if (opts.ip !== undefined) spec.ip = opts.ip;
      done(await handlers.networkConnect(net, spec));
    });
  network
    .command('disconnect')
    .description('detach a container from a network')
    .argument('<network>')
    .argument('<container>')
    .option('-f, --force', 'force the disconnect')
    .action(async (net: string, container: string, opts: { force?: boolean }) =>
      done(await handlers.networkDisconnect(net, container, opts.force ?? false)),
    );

  program
    .command('run')
    .description('run a command in a new container')
    .usage('[options] IMAGE|COMMAND [ARG...]')
    .helpOption('--help', 'display help for command') // -h is --hostname, as in Docker
    .argument('<command...>')
    .passThroughOptions()
    .option('-d, --detach', 'run in the background and print the container ID')
    .option('--rm', 'remove the container when it exits')
    .option('--name <name>', 'container name')
    .option('--network <network>', 'network to attach to (default: bridge)')
    .addOption(new AliasOption('--net <network>', 'network'))
    .option('-h, --hostname <name>', 'container hostname')
    .option('--ip <ip>', 'IPv4 address on the network')
    .option('--network-alias <alias>', 'network-scoped alias (repeatable)', collect)
    .addOption(new AliasOption('--net-alias <alias>', 'networkAlias').argParser(collect))
    .option('--link <name[:alias]>', 'link to a container on the default network (repeatable)', collect)
    .option('--add-host <name:ip>', 'add a line to /etc/hosts (repeatable)', collect)
    .option('--dns <ip>', 'nameserver (repeatable)', collect)
    .option('--dns-search <domain>', 'search domain (repeatable; "." for none)', collect)
    .option('--dns-option <option>', 'resolv.conf option (repeatable)', collect)
    .addOption(new AliasOption('--dns-opt <option>', 'dnsOption').argParser(collect))
    .option('-p, --publish <[ip:][hostPort:]containerPort[/proto]>', 'publish a container port (or range) on the host (repeatable)', collect)
    .option('-P, --publish-all', 'publish every exposed port on an ephemeral host port')
    .option('--expose <port[/proto]>', 'expose a port or a range (repeatable)', collect)
    .option('-e, --env <key[=value]>', 'environment variable (repeatable; K alone copies it from here)', collect)
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .option('--rootfs <dir>', 'root directory of the container')
    .option('--entrypoint <cmd>', "run IMAGE: replace the image's entrypoint ('' clears it)")
    .option('-u, --user <user[:group]>', 'run IMAGE: the user to run as (a name of the image or numbers)')
    .addOption(new Option('-i, --interactive').hideHelp()) // Docker habit (`-it`): stdio is always attached
    .addOption(new Option('-t, --tty').hideHelp())
    .action(async (cmd: string[], opts: RunOptions) => done(await handlers.run(buildRunSpec(opts, cmd, env))));

  program
    .command('exec')
    .description('run a command in a running container')
    .usage('[options] CONTAINER COMMAND [ARG...]')
    .argument('<container>')
    .argument('<command...>')
    .passThroughOptions()
    .option('-e, --env <key[=value]>', 'environment variable (repeatable; K alone copies it from here)', collect)
    .option('-w, --workdir <dir>', 'working directory inside the container')
    .addOption(new Option('-i, --interactive').hideHelp())
    .addOption(new Option('-t, --tty').hideHelp())
    .action(async (container: string, cmd: string[], opts: ExecOptions) => done(await handlers.exec(container, buildExecSpec(opts, cmd, env))));

  program
    .command('ps')
    .description('list containers')
    .option('-a, --all', 'also stopped containers')
    .option('-q, --quiet', 'only container IDs')
    .addOption(formatOption())
    .action(async (opts: { all?: boolean; quiet?: boolean; format: Format }) =>
      done(await handlers.ps({ all: opts.all ?? false, quiet: opts.quiet ?? false, format: opts.format })),
    );
  program
    .command('inspect')
    .description('show containers as JSON')
    .argument('<container...>')
    .action(async (refs: string[]) => done(await handlers.inspect(refs)));
  const pullAction = async (ref: string, opts: { tlsVerify?: boolean }) => done(await handlers.pull(ref, opts.tlsVerify));
  const imagesAction = async (opts: { quiet?: boolean; format: Format }) => done(await handlers.images({ quiet: opts.quiet ?? false, format: opts.format }));
  const rmiAction = async (refs: string[], opts: { force?: boolean }) => done(await handlers.rmi(refs, opts.force ?? false));
  const pullCommand = (cmd: Command) =>
    cmd
      .description('pull an image from a registry')
      .argument('<image>', 'NAME[:TAG|@DIGEST]')
      .option('--tls-verify <bool>', 'require HTTPS (false: plain HTTP for this pull, as Podman)', parseTlsVerify)
      .action(pullAction);
  const imagesCommand = (cmd: Command) => cmd.description('list images').option('-q, --quiet', 'only image IDs').addOption(formatOption()).action(imagesAction);
  const rmiCommand = (cmd: Command) =>
    cmd.description('remove images').argument('<image...>').option('-f, --force', 'remove an image of several tags by ID').action(rmiAction);
  const saveCommand = (cmd: Command) =>
    cmd
      .description('write images to a tar (an OCI layout with Docker\'s manifest.json)')
      .argument('<image...>')
      .option('-o, --output <file>', 'the tar to write (default: standard output)')
      .action(async (refs: string[], opts: { output?: string }) => done(await handlers.save(refs, opts.output)));
  const loadCommand = (cmd: Command) =>
    cmd
      .description('read images from a tar (OCI layout or Docker archive)')
      .option('-i, --input <file>', 'the tar to read (default: standard input)')
      .action(async (opts: { input?: string }) => done(await handlers.load(opts.input)));
  saveCommand(program.command('save'));
  loadCommand(program.command('load'));
  pullCommand(program.command('pull'));
  imagesCommand(program.command('images'));
  rmiCommand(program.command('rmi'));
  const image = program.command('image').description('manage images').helpCommand(false);
  pullCommand(image.command('pull'));
  imagesCommand(image.command('ls').alias('list'));
  rmiCommand(image.command('rm').alias('remove'));
  saveCommand(image.command('save'));
  loadCommand(image.command('load'));
  image
    .command('prune')
    .description('remove images without a tag that no container uses')
    .option('-a, --all', 'every image no container uses')
    .option('-f, --force', 'do not ask (dnsnet never asks)')
    .action(async (opts: { all?: boolean }) => done(await handlers.imagePrune(opts.all ?? false)));
  image
    .command('inspect')
    .description('show images as JSON')
    .argument('<image...>')
    .action(async (refs: string[]) => done(await handlers.imageInspect(refs)));
  program
    .command('port')
    .description("list a container's published ports, or where one port is published")
    .argument('<container>')
    .argument('[port]', 'PRIVATE_PORT[/PROTO]')
    .action(async (ref: string, port: string | undefined) => done(await handlers.port(ref, port)));
  program
    .command('stop')
    .description('stop containers (SIGTERM, then SIGKILL after the timeout)')
    .argument('<container...>')
    .option('-t, --time <seconds>', 'seconds to wait before SIGKILL (default 10)', parseSeconds)
    .action(async (refs: string[], opts: { time?: number }) => done(await handlers.stop(refs, opts.time)));
  program
    .command('start')
    .description('start stopped containers')
    .argument('<container...>')
    .action(async (refs: string[]) => done(await handlers.start(refs)));
  program
    .command('rm')
    .description('remove containers')
    .argument('<container...>')
    .option('-f, --force', 'stop running containers first')
    .action(async (refs: string[], opts: { force?: boolean }) => done(await handlers.rm(refs, opts.force ?? false)));
  program
    .command('logs')
    .description("print a detached container's output")
    .argument('<container>')
    .option('-f, --follow', 'keep printing until the container exits')
    .action(async (ref: string, opts: { follow?: boolean }) => done(await handlers.logs(ref, opts.follow ?? false)));
  program
    .command('stats')
    .description('resolver counters')
    .addOption(formatOption())
    .action(async (opts: { format: Format }) => done(await handlers.stats(opts.format)));
  const system = program.command('system').description('manage dnsnet').helpCommand(false);
  system
    .command('prune')
    .description('remove stopped containers and unused networks')
    .option('-f, --force', 'do not ask (dnsnet never asks)')
    .action(async () => done(await handlers.systemPrune()));
  system
    .command('info')
    .description('the daemon, its roots, counts, the host resolv.conf and the cluster (docker info)')
    .addOption(formatOption())
    .action(async (opts: { format: Format }) => done(await handlers.systemInfo(opts.format)));
  system
    .command('reset')
    .description('remove every container, network and image of this state root, its bridge and nftables table, and stop its daemon')
    .option('-f, --force', 'do not ask')
    .action(async (opts: { force?: boolean }) => done(await handlers.systemReset(opts.force ?? false)));
  program
    .command('events')
    .description('what happens to containers, networks and the daemon, as it happens (docker events)')
    .option('--since <time>', 'also the events since then (RFC 3339, Unix seconds, or a duration ago: 10m)')
    .option('--until <time>', 'stop at that time')
    .option('-f, --filter <key=value>', 'type=container|network|daemon, event=ACTION, container=NAME|ID, network=NAME|ID (repeatable)', collect)
    .addOption(formatOption())
    .action(async (opts: { since?: string; until?: string; filter?: string[]; format: Format }) => done(await handlers.events({ ...opts, filter: opts.filter ?? [] })));
  const podman = system.command('podman').description("serve Podman's networks in place of aardvark-dns").helpCommand(false);
  podman
    .command('install')
    .description("put dnsnet's aardvark-dns where Podman looks first")
    .option('--dir <dir>', 'the helper directory', '/usr/local/libexec/podman')
    .action(async (opts: { dir: string }) => done(await handlers.podmanInstall(opts.dir)));
  podman
    .command('ls')
    .description('list the Podman networks dnsnet serves')
    .addOption(formatOption())
    .action(async (opts: { format: Format }) => done(await handlers.podmanLs(opts.format)));
  podman
    .command('uninstall')
    .description("take dnsnet's aardvark-dns out again")
    .option('--dir <dir>', 'the helper directory', '/usr/local/libexec/podman')
    .action(async (opts: { dir: string }) => done(await handlers.podmanUninstall(opts.dir)));
  program
    .command('daemon')
    .description('run the daemon in the foreground')
    .option('--cluster-store <url>', 'join a cluster: its etcd, etcd://IP:PORT[,IP:PORT...] (or DNSNET_CLUSTER_STORE)')
    .option('--cluster-advertise <ip>', "this host's address on the underlay, that the other hosts reach (or DNSNET_CLUSTER_ADVERTISE)")
    .option('--metrics-addr <host:port>', 'also serve /metrics (Prometheus) over TCP there, e.g. 127.0.0.1:9153 (or DNSNET_METRICS_ADDR)')
    .action(async (opts: { clusterStore?: string; clusterAdvertise?: string; metricsAddr?: string }) => done(await handlers.daemon(opts)));
  program
    .command('demo')
    .description('show container DNS at work')
    .action(async () => done(await handlers.demo()));
  program
    .command('version')
    .description('print the version')
    .action(async () => done(await handlers.version()));
  return program;
}

/** A hidden Docker spelling that stores into its canonical option, so flag order is kept across both spellings. */
class AliasOption extends Option {
  constructor(
    flags: string,
    private readonly target: string,
  ) {
    super(flags);
    this.hideHelp();
  }

  override attributeName(): string {
    return this.target;
  }
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function collectMap(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('expected key=value.');
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

function parseTlsVerify(value: string): boolean {
  if (/^(true|1)$/i.test(value)) return true;
  if (/^(false|0)$/i.test(value)) return false;
  throw new InvalidArgumentError('expected true or false.');
}

function parseSeconds(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError('expected whole seconds.');
  return Number(value);
}

function formatOption(): Option {
  return new Option('--format <format>', 'output format').choices(['table', 'json']).default('table');
}
