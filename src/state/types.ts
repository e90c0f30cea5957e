// Record types persisted under the state root, one JSON file per network and per container.
import type { PublishedPort } from '../ports/holder.js';
import type { PortBindingRecord } from '../ports/spec.js';

export const SCHEMA_VERSION = 2; // 2: links and extra hosts parsed (state/migrate.ts reads 1)

export interface IpamConfig {
  subnet: string; // CIDR, normalised (network address)
  gateway: string;
  ipRange?: string;
}

export interface NetworkRecord {
  schema: number;
  id: string; // 64 hex
  name: string;
  created: string; // ISO time
  /**
   * `bridge`; `host` and `null` are the pre-defined networks `host` and `none` (one of each, no device);
   * `overlay` spans the hosts of a cluster (its record here is this host's copy of the one in etcd).
   */
  driver: 'bridge' | 'host' | 'null' | 'overlay';
  isDefault: boolean; // the legacy network `bridge`
  internal: boolean;
  enableIPv6: boolean;
  mtu: number;
  device: string; // bridge device name ('' for host and none)
  ipam: IpamConfig[]; // IPv4 first, then IPv6 when enabled
  options: Record<string, string>;
  /** overlay: its VXLAN network identifier, and whether `docker network create --attachable` was given. */
  vni?: number;
  attachable?: boolean;
}

/** Networks with a bridge device on this host (bridge, and an overlay network's local bridge). */
export function hasBridge(net: Pick<NetworkRecord, 'driver'>): boolean {
  return net.driver === 'bridge' || net.driver === 'overlay';
}

/** The pre-defined networks `host` and `none`: a network mode, with no device and no endpoints. */
export function isModeNetwork(net: Pick<NetworkRecord, 'driver'>): boolean {
  return net.driver === 'host' || net.driver === 'null';
}

export interface EndpointRecord {
  networkId: string;
  networkName: string;
  ifname: string; // eth0, eth1, ... inside the container
  hostVeth: string; // host end of the veth pair
  mac: string;
  ipv4: string;
  ipv6?: string;
  prefixLen: number;
  prefixLen6?: number;
  gateway: string;
  gateway6?: string;
  aliases: string[]; // --network-alias / connect --alias
  requestedIp?: string; // --ip, kept so that `start` asks for the same address
  /** overlay: the mod revision of its address claim in etcd (a release deletes only that claim). */
  claim?: number;
}

export type ContainerStatus = 'created' | 'running' | 'exited';

/** `--link NAME[:ALIAS]`, parsed. */
export interface LinkRecord {
  /** The target container's name (its name when it existed at `run`, else as given: it may come later). */
  target: string;
  /** The name the linking container knows it by (the target's name when no alias is given). */
  alias: string;
}

/** `--add-host NAME:IP`, parsed; `ip` may be `host-gateway`, the default network's gateway when a file is written. */
export interface ExtraHostRecord {
  name: string;
  ip: string;
}

export interface ContainerState {
  status: ContainerStatus;
  pid: number;
  startTime?: string; // field 22 of /proc/PID/stat: tells a re-used pid apart
  exitCode: number;
  startedAt?: string;
  finishedAt?: string;
  error?: string;
}

export interface ContainerRecord {
  schema: number;
  id: string; // 64 hex
  name: string;
  created: string;
  hostname: string;
  domainname: string;
  cmd: string[];
  env: string[]; // K=V
  workdir: string;
  rootfs?: string;
  /** The image it was made from (`run IMAGE`): its ID, the reference as given, its layers (blob digests, bottom first), the user it runs as. */
  image?: { id: string; ref: string; layers: string[]; uid: number; gid: number; user: string };
  detach: boolean;
  autoRemove: boolean;
  network: string; // network asked for at `run`: a name, `host`, `none`, or `container:<ID>`
  /** `--network container:X`: the ID of X, whose network namespace and files this container shares. */
  netContainer?: string;
  requestedIp?: string;
  networkAliases: string[];
  links: LinkRecord[];
  extraHosts: ExtraHostRecord[];
  dns: string[];
  dnsSearch: string[];
  dnsOptions: string[];
  /** -p as given (HostConfig.PortBindings), --expose and published ports (Config.ExposedPorts), -P. Absent in older records. */
  portBindings?: PortBindingRecord[];
  exposedPorts?: string[];
  publishAll?: boolean;
  /** The host ports held for it while it runs (NetworkSettings.Ports). */
  ports?: PublishedPort[];
  state: ContainerState;
  endpoints: EndpointRecord[]; // in the order they were attached
  files: {
    hosts?: string; // sha256 of what dnsnet last wrote
    hostname?: string;
    resolvConf?: string;
  };
  resolvConfEdited?: boolean; // the user edited /etc/resolv.conf inside: dnsnet leaves it alone
}
