// A container's sandbox: its netns and veth endpoints (ip batches built by pure functions), and the
// argv that starts a process inside it (net ns joined; new mount and UTS ns; /etc files bind-mounted).
import { NETNS_DIR } from '../state/kernel-names.js';
import fs from 'node:fs/promises';
import { DnsnetError, wrapError } from '../errors.js';
import { hasLink } from './links.js';
import { ipJson, runIp, runIpBatch, type PreparedIpBatch } from './run.js';

export interface EndpointPlan {
  netns: string; // netns name
  hostVeth: string;
  ifname: string; // inside: eth0, eth1...
  bridge: string;
  mtu: number;
  mac: string;
  ipv4: string;
  prefixLen: number;
  ipv6?: string;
  prefixLen6?: number;
  gateway?: string; // set for the endpoint that carries the default route
  gateway6?: string;
  owner?: string; // the state root's owner tag, set as the host veth's alias
}

/** Host-side lines: the veth pair with its peer created straight inside the netns. */
export function hostEndpointBatch(p: EndpointPlan): string[] {
  return [
    `link add ${p.hostVeth} mtu ${p.mtu} type veth peer name ${p.ifname} mtu ${p.mtu} address ${p.mac} netns ${p.netns}`,
    `link set ${p.hostVeth} master ${p.bridge}`,
    // Hairpin (Docker's, for published ports without its proxy): with br_netfilter loaded, a container's
    // packet to its own published port is DNATed back to it and bridged out of the port it came in by.
    `link set ${p.hostVeth} type bridge_slave hairpin on`,
    ...(p.owner ? [`link set ${p.hostVeth} alias ${p.owner}`] : []),
    `link set ${p.hostVeth} up`,
  ];
}

/** Lines run inside the netns: addresses, link up, default route. */
export function innerEndpointBatch(p: EndpointPlan, withLo: boolean): string[] {
  const lines = withLo ? ['link set lo up'] : [];
  lines.push(`addr add ${p.ipv4}/${p.prefixLen} dev ${p.ifname}`);
  // No `-6` in a batch line (ip rejects it there): the family follows from the address.
  if (p.ipv6) lines.push(`addr add ${p.ipv6}/${p.prefixLen6 ?? 64} dev ${p.ifname} nodad`);
  lines.push(`link set ${p.ifname} up`);
  if (p.gateway) lines.push(`route add default via ${p.gateway} dev ${p.ifname}`);
  if (p.gateway6) lines.push(`route add default via ${p.gateway6} dev ${p.ifname}`);
  return lines;
}

export async function netnsExists(name: string): Promise<boolean> {
  try {
    await fs.access(`${NETNS_DIR}/${name}`);
    return true;
  } catch {
    return false;
  }
}

export async function createNetns(name: string): Promise<void> {
  await runIp(['netns', 'add', name]);
}

/**
 * SIGKILL every process still inside the named netns: what a container leaves when its netns goes
 * (children that outlived its init, which Docker's PID namespace would take along; or a process a
 * daemon crash left unrecorded, between spawning it and saving its pid). `keep` spares the processes of
 * containers that joined this netns (`--network container:`): they keep running, as in Docker. Returns how many.
 */
export async function killNetnsProcesses(name: string, keep: (pid: number) => boolean = () => false): Promise<number> {
  if (!(await netnsExists(name))) return 0;
  const out = await runIp(['netns', 'pids', name]).catch(() => '');
  const pids = out.split(/\s+/).filter(Boolean).map(Number).filter((pid) => pid > 1 && pid !== process.pid && !keep(pid));
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return pids.length;
}

export async function deleteNetns(name: string): Promise<void> {
  if (await netnsExists(name)) await runIp(['netns', 'delete', name]);
}

/**
 * Whether a `dnsnet-*` netns whose container record is gone is this root's orphan: its `eth0` is the
 * peer of a host link carrying `ownerTag`, or it holds nothing at all (only `lo`, no process), which
 * no container of any root can be (a run names its netns while the socket helper is inside it).
 */
export async function isOrphanNetns(name: string, ownerTag: string, hostLinks: { ifindex: number; alias?: string | undefined }[]): Promise<boolean> {
  try {
    const links = await ipJson<{ ifname: string; link_index?: number }[]>(['link', 'show'], { netns: name });
    const eth0 = links.find((l) => l.ifname === 'eth0');
    if (eth0?.link_index !== undefined) return hostLinks.some((h) => h.ifindex === eth0.link_index && h.alias === ownerTag);
    if (links.some((l) => l.ifname !== 'lo')) return false;
    return (await runIp(['netns', 'pids', name])).trim() === '';
  } catch {
    return false; // gone meanwhile, or unreadable: leave it
  }
}

/**
 * Name the new netns of process `pid` (a spare socket helper's, see resolver-sockets.ts) and attach
 * the endpoints, the first one in the same host batch (one `ip` for `netns attach` and its veth),
 * then `lo` and its addresses inside. On failure the veth pairs made here are removed again; the
 * netns, if it got its name, is the caller's to delete.
 */
export async function attachNetnsWithEndpoints(
  name: string,
  pid: number,
  plans: EndpointPlan[],
  prepared?: { host: PreparedIpBatch; inner: PreparedIpBatch },
): Promise<void> {
  const [first, ...rest] = plans;
  try {
    await runIpBatch([`netns attach ${name} ${pid}`, ...(first ? hostEndpointBatch(first) : [])], prepared ? { prepared: prepared.host } : {});
    // `prepared.inner` was started in the netns of `pid`, which the line above named `name`.
    await runIpBatch(first ? innerEndpointBatch(first, true) : ['link set lo up'], { netns: name, ...(prepared ? { prepared: prepared.inner } : {}) });
  } catch (error) {
    if (first) await deleteLink(first.hostVeth).catch(() => undefined);
    throw wrapError(first ? `attach ${first.ifname} to ${first.bridge}` : `create netns ${name}`, error, 'kernel');
  }
  for (const p of rest) await addEndpoint(p, false);
}

/** Attach one endpoint; on failure the veth pair is removed again. */
export async function addEndpoint(p: EndpointPlan, first: boolean): Promise<void> {
  try {
    await runIpBatch(hostEndpointBatch(p));
    await runIpBatch(innerEndpointBatch(p, first), { netns: p.netns });
  } catch (error) {
    await deleteLink(p.hostVeth).catch(() => undefined);
    throw wrapError(`attach ${p.ifname} to ${p.bridge}`, error, 'kernel');
  }
}

/** Deleting one end of a veth pair deletes both. A missing link is not an error. */
export async function deleteLink(name: string): Promise<void> {
  if (!hasLink(name)) return;
  try {
    await runIp(['link', 'delete', name]);
  } catch (error) {
    // Gone meanwhile (a veth goes with its netns, which the kernel tears down a moment later): done.
    if (hasLink(name)) throw error;
  }
}

export interface LaunchPlan {
  /** The netns to join; absent: the host's (`--network host`). */
  netnsPath?: string;
  /** `run IMAGE`: `rootfs` is the mount point of an overlay of `lower` (top first) with `upper` and `work`. */
  image?: { lower: string[]; upper: string; work: string; uid: number; gid: number };
  hostsFile: string;
  hostnameFile: string;
  resolvConfFile: string;
  hostname: string;
  workdir: string;
  rootfs?: string;
  cmd: string[];
}

// Runs inside the new mount and UTS namespaces (unshare's mounts are private, so nothing leaks to the
// host). Any failure of our own preparation exits 125; the last unshare exits 126/127 for a command
// that cannot run / is not found, as Docker does.
const INIT_SCRIPT = [
  'r="$1"; w="$2"; h="$3"',
  'for f in hosts hostname resolv.conf; do',
  '  src="$4"; shift',
  '  [ -e "$r/etc/$f" ] || { [ "$f" = hostname ] && continue; }',
  '  mount --bind "$src" "$r/etc/$f" || { echo "dnsnet: prepare container: cannot bind-mount $src over $r/etc/$f" >&2; exit 125; }',
  'done',
  'hostname "$h" || { echo "dnsnet: prepare container: cannot set hostname $h" >&2; exit 125; }',
  '[ -d "$r$w" ] || [ -d "$r/$w" ] || { echo "dnsnet: prepare container: working directory $w does not exist" >&2; exit 125; }',
  'shift 3',
  'exec /usr/bin/unshare --root="$r" --wd="$w" -- "$@"',
].join('\n');

// An image's root, in the container's own mount namespace (so it goes when its last process does): the
// overlay, the three files, /proc, a read-only /sys (of the container's netns), a /dev of its own (a tmpfs
// with the usual nodes, devpts, shm), the hostname, the working directory (made when missing, as Docker
// does), then the command as the image's user.
const IMAGE_INIT_SCRIPT = [
  'fail() { echo "dnsnet: prepare container: $*" >&2; exit 125; }',
  'r="$1"; lower="$2"; upper="$3"; work="$4"; w="$5"; h="$6"; u="$7"; g="$8"; shift 8',
  'mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$r" || fail "cannot mount the image\'s overlay on $r"',
  'for f in hosts hostname resolv.conf; do',
  '  src="$1"; shift',
  '  mount --bind "$src" "$r/etc/$f" || fail "cannot bind-mount $src over /etc/$f"',
  'done',
  'mount -t proc -o nosuid,nodev,noexec proc "$r/proc" || fail "cannot mount /proc"',
  'mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys" || fail "cannot mount /sys"',
  'mount -t tmpfs -o nosuid,mode=755,size=65536k tmpfs "$r/dev" || fail "cannot mount /dev"',
  'dev() { mknod -m 666 "$r/dev/$1" c "$2" "$3" || fail "cannot make /dev/$1"; }',
  'dev null 1 3; dev zero 1 5; dev full 1 7; dev random 1 8; dev urandom 1 9; dev tty 5 0',
  'mkdir -p "$r/dev/pts" "$r/dev/shm"',
  'mount -t devpts -o newinstance,ptmxmode=0666,mode=620,nosuid,noexec devpts "$r/dev/pts" || fail "cannot mount /dev/pts"',
  'mount -t tmpfs -o nosuid,nodev,mode=1777,size=65536k shm "$r/dev/shm" || fail "cannot mount /dev/shm"',
  'ln -s pts/ptmx "$r/dev/ptmx"; ln -s /proc/self/fd "$r/dev/fd"',
  'ln -s /proc/self/fd/0 "$r/dev/stdin"; ln -s /proc/self/fd/1 "$r/dev/stdout"; ln -s /proc/self/fd/2 "$r/dev/stderr"',
  'hostname "$h" || fail "cannot set hostname $h"',
  '[ -d "$r/$w" ] || mkdir -p "$r/$w" || fail "cannot make the working directory $w"',
  'exec /usr/bin/unshare --root="$r" --wd="$w" -S "$u" -G "$g" -- "$@"',
].join('\n');

/** The argv that starts cmd inside the sandbox. argv[0] is absolute; the pid it gets is the command's. */
export function buildLaunchArgv(p: LaunchPlan): string[] {
  if (p.cmd.length === 0) throw new DnsnetError('invalid', 'run: no command given');
  if (p.image) {
    if (!p.rootfs) throw new DnsnetError('internal', 'run: an image without a mount point');
    const { lower, upper, work, uid, gid } = p.image;
    return [...initArgv(p.netnsPath, IMAGE_INIT_SCRIPT), p.rootfs, lower.join(':'), upper, work, p.workdir, p.hostname, String(uid), String(gid), p.hostsFile, p.hostnameFile, p.resolvConfFile, ...p.cmd];
  }
  return [...initArgv(p.netnsPath, INIT_SCRIPT), p.rootfs ?? '/', p.workdir, p.hostname, p.hostsFile, p.hostnameFile, p.resolvConfFile, ...p.cmd];
}

/** Into the netns (when one is given), then new mount and UTS namespaces, where `script` prepares and execs. */
function initArgv(netnsPath: string | undefined, script: string): string[] {
  return [
    ...(netnsPath !== undefined ? ['/usr/bin/nsenter', `--net=${netnsPath}`, '--'] : []),
    '/usr/bin/unshare',
    '--mount',
    '--uts',
    '--propagation',
    'private',
    '--',
    '/bin/sh',
    '-c',
    script,
    'dnsnet-init',
  ];
}

/** The argv that runs cmd inside a running container's namespaces (net, mount, UTS; its root), as its user. */
export function buildExecArgv(pid: number, workdir: string, cmd: string[], user?: { uid: number; gid: number }): string[] {
  if (cmd.length === 0) throw new DnsnetError('invalid', 'exec: no command given');
  const as = user && (user.uid !== 0 || user.gid !== 0) ? [`--setuid=${user.uid}`, `--setgid=${user.gid}`] : [];
  return ['/usr/bin/nsenter', `--target=${pid}`, '--net', '--mount', '--uts', '--root', `--wdns=${workdir}`, ...as, '--', ...cmd];
}
