// Rootful Podman 4.3 for a test, private and offline, with dnsnet's aardvark-dns (bench/lib.sh's recipe, in a
// netns of the test's): every podman command runs in one private mount namespace (fresh /run and /dev/shm,
// /etc/resolv.conf bind-mounted from a file of the test) and in a throwaway netns with no route out, where
// netavark makes its bridges and iptables rules and the dnsnet daemon runs; CONTAINERS_CONF and
// CONTAINERS_STORAGE_CONF name files of the test (storage, network configs, helper_binaries_dir with our
// aardvark-dns first); runc and cgroupfs; containers on `--rootfs /:O` (the host's / under an overlay).
// The upstream is a dnsmasq on the netns's 127.0.0.1 (this dnsnet's host resolv.conf names only it).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa, type Result } from 'execa';
import { CLI } from './dnsnet-env.js';
import { HAVE_NETAVARK, hermeticDnsnet } from './netavark.js';
import { createTestNetns, type TestNetns } from './netns.js';

export const PODMAN = '/usr/bin/podman';
export const HAVE_PODMAN = HAVE_NETAVARK && fs.existsSync(PODMAN) && fs.existsSync('/usr/sbin/runc');
/** Why the Podman tests are skipped here, or '' when they run. */
export const NO_PODMAN = HAVE_PODMAN ? '' : 'Podman 4.3, netavark, runc, iptables and dnsmasq are not all installed (scripts/setup.sh installs them)';

/** An address of the netns's own lo that answers nothing: the private /etc/resolv.conf names it, so Podman writes no public fallback. */
const DEAD_NAMESERVER = '10.213.254.53';

export interface PodmanEnv {
  dir: string;
  env: Record<string, string>;
  ns: TestNetns;
  /** This dnsnet's host resolv.conf (what its daemon forwards to). */
  resolvConf: string;
  pm(args: string[], opts?: { timeoutMs?: number }): Promise<Result>;
  /** `podman run -d --name NAME --network NET --rootfs /:O sleep infinity` (more flags before the name). */
  run(name: string, network: string, flags?: string[]): Promise<void>;
  /** `podman network create --subnet SUBNET NAME`: its gateway. */
  network(name: string, subnet: string): Promise<string>;
  ip(name: string, network: string): Promise<string>;
  /** dig inside a container's netns (its own /etc/resolv.conf is not read by `dig @server`). */
  dig(name: string, args: string[]): Promise<string>;
  /** A second dnsmasq in the netns on `ip`. */
  dnsmasq(ip: string, addresses: string[]): Promise<number>;
  stopUpstream(): void;
  teardown(): Promise<void>;
}

const alive = (pid: number | undefined): boolean => {
  try {
    return pid !== undefined && pid > 0 && (process.kill(pid, 0), true);
  } catch {
    return false;
  }
};

async function stop(pid: number | undefined, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid!, sig);
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) process.kill(pid!, 'SIGKILL');
}

export async function createPodman(): Promise<PodmanEnv> {
  const tag = crypto.randomBytes(3).toString('hex');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `dnsnet-podman-${tag}-`));
  for (const d of ['storage', 'runroot', 'tmp', 'netconf', 'nsdir', 'bin']) fs.mkdirSync(path.join(dir, d));
  const { env, resolvConf } = hermeticDnsnet(dir, tag);
  fs.writeFileSync(path.join(dir, 'etc-resolv.conf'), `nameserver ${DEAD_NAMESERVER}\n`);
  const baseEnv = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  const install = await execa(process.execPath, [CLI, 'system', 'podman', 'install', '--dir', path.join(dir, 'bin')], { env: { ...baseEnv, ...env }, extendEnv: false, reject: false });
  if (install.exitCode !== 0) throw new Error(`podman install: ${install.stderr}`);
  fs.writeFileSync(
    path.join(dir, 'containers.conf'),
    `[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
log_driver = "k8s-file"
[network]
network_backend = "netavark"
network_config_dir = "${dir}/netconf"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${dir}/events.log"
runtime = "runc"
tmp_dir = "${dir}/tmp"
static_dir = "${dir}/storage/libpod"
volume_path = "${dir}/storage/volumes"
helper_binaries_dir = ["${dir}/bin", "/usr/lib/podman"]
`,
  );
  fs.writeFileSync(path.join(dir, 'storage.conf'), `[storage]\ndriver = "overlay"\ngraphroot = "${dir}/storage"\nrunroot = "${dir}/runroot"\n`);

  const ns = await createTestNetns();
  const helpers: number[] = [];
  const keeper = path.join(dir, 'nsdir', 'mnt');
  let mounted = false;
  const cleanupMounts = async (): Promise<void> => {
    if (!mounted) return;
    await execa('umount', [keeper], { reject: false });
    await execa('umount', [path.join(dir, 'nsdir')], { reject: false });
    mounted = false;
  };
  const inNs = (argv: string[], timeoutMs = 30_000) => execa('nsenter', [`--net=${ns.path}`, ...argv], { reject: false, timeout: timeoutMs, env: { ...baseEnv, ...env }, extendEnv: false, stdin: 'ignore' });
  try {
    await execa('ip', ['-n', ns.name, 'addr', 'add', `${DEAD_NAMESERVER}/32`, 'dev', 'lo']);
    const up = await inNs(['dnsmasq', '--conf-file=/dev/null', '--listen-address=127.0.0.1', '--bind-interfaces', '--no-hosts', '--no-resolv', `--pid-file=${dir}/dnsmasq.pid`, '--address=/testname/198.51.100.1']);
    if (up.exitCode !== 0) throw new Error(`dnsmasq: ${up.stderr}`);
    helpers.push(Number(fs.readFileSync(`${dir}/dnsmasq.pid`, 'utf8')));
    // The mount namespace is kept by binding its nsfs file on a private mount (bench/lib.sh, podman_env).
    await execa('mount', ['--bind', path.join(dir, 'nsdir'), path.join(dir, 'nsdir')]);
    mounted = true;
    await execa('mount', ['--make-private', path.join(dir, 'nsdir')]);
    fs.writeFileSync(keeper, '');
    await execa('unshare', [`--mount=${keeper}`, '--propagation', 'private', 'sh', '-ec', 'mount -t tmpfs -o mode=755 dnt-run /run; mount -t tmpfs -o mode=1777 dnt-shm /dev/shm; mount --bind "$1" /etc/resolv.conf', 'sh', path.join(dir, 'etc-resolv.conf')]);
  } catch (error) {
    await cleanupMounts();
    for (const p of helpers) await stop(p, 'SIGKILL');
    await ns.destroy().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const pmEnv = { ...baseEnv, ...env, CONTAINERS_CONF: path.join(dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: path.join(dir, 'storage.conf') };
  const pm = (args: string[], opts: { timeoutMs?: number } = {}) =>
    execa('nsenter', [`--mount=${keeper}`, `--net=${ns.path}`, PODMAN, ...args], { reject: false, timeout: opts.timeoutMs ?? 60_000, env: pmEnv, extendEnv: false, stdin: 'ignore' });
  const must = async (args: string[]): Promise<string> => {
    const r = await pm(args);
    if (r.exitCode !== 0) throw new Error(`podman ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr}`);
    return String(r.stdout).trim();
  };
  const inMnt = (argv: string[]) => execa('nsenter', [`--mount=${keeper}`, ...argv], { reject: false });

  return {
    dir,
    env,
    ns,
    resolvConf,
    pm,
    async run(name, network, flags = []) {
      await must(['run', '-d', ...flags, '--name', name, '--network', network, '--rootfs', '/:O', 'sleep', 'infinity']);
    },
    async network(name, subnet) {
      await must(['network', 'create', '--subnet', subnet, name]);
      return must(['network', 'inspect', name, '--format', '{{range .Subnets}}{{.Gateway}}{{end}}']);
    },
    async ip(name, network) {
      return must(['inspect', name, '--format', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`]);
    },
    async dig(name, args) {
      const pid = await must(['inspect', name, '--format', '{{.State.Pid}}']);
      const r = await execa('nsenter', [`--net=/proc/${pid}/ns/net`, 'dig', '+time=3', '+tries=1', ...args], { reject: false, timeout: 20_000 });
      return String(r.stdout).trim();
    },
    async dnsmasq(ip, addresses) {
      const pidFile = `${dir}/dnsmasq-${ip}.pid`;
      const r = await inNs(['dnsmasq', '--conf-file=/dev/null', `--listen-address=${ip}`, '--bind-interfaces', '--no-hosts', '--no-resolv', `--pid-file=${pidFile}`, ...addresses.map((a) => `--address=${a}`)]);
      if (r.exitCode !== 0) throw new Error(`dnsmasq ${ip}: ${r.stderr}`);
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      helpers.push(pid);
      return pid;
    },
    stopUpstream() {
      if (alive(helpers[0])) process.kill(helpers[0]!, 'SIGKILL');
    },
    async teardown() {
      await pm(['rm', '-f', '-a', '-t', '0'], { timeoutMs: 120_000 });
      await pm(['network', 'prune', '-f']);
      // Our aardvark-dns leaves with the last network; the pid file is in the private /run.
      const pidText = await inMnt(['cat', '/run/containers/networks/aardvark-dns/aardvark.pid']);
      await stop(Number(pidText.stdout) || undefined);
      for (const p of String((await execa('pgrep', ['-f', dir], { reject: false })).stdout).split('\n').filter(Boolean)) {
        const cmd = fs.existsSync(`/proc/${p}/cmdline`) ? fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') : '';
        if (cmd.includes('aardvark-dns.js') || cmd.includes('conmon')) await stop(Number(p), 'SIGKILL');
      }
      const daemon = Number(fs.existsSync(path.join(env.DNSNET_RUN!, 'dnsnet.pid')) ? fs.readFileSync(path.join(env.DNSNET_RUN!, 'dnsnet.pid'), 'utf8') : 0);
      await stop(daemon || undefined);
      for (const p of helpers) await stop(p, 'SIGKILL');
      await cleanupMounts();
      await ns.destroy().catch(() => undefined);
      // Podman's overlay storage may still be mounted by a container that would not die: leave no mount.
      for (const m of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((p) => p.startsWith(dir)).reverse()) await execa('umount', ['-l', m], { reject: false });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
