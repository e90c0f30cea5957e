// The HTTP+JSON API between the CLI and the daemon: request bodies and the routes that take them.
//
// Routes (all JSON; errors answer 4xx/5xx with ApiError):
//   GET    /_ping                          -> { pid }
//   GET    /networks                       -> NetworkJson[]
//   POST   /networks            NetworkCreateSpec -> NetworkJson
//   GET    /networks/:ref                  -> NetworkJson        (ref = name, ID or unique ID prefix)
//   DELETE /networks/:ref                  -> {}
//   POST   /networks/prune                 -> { deleted: string[] }
//   POST   /networks/:ref/connect    ConnectSpec -> {}
//   POST   /networks/:ref/disconnect { container: string, force?: boolean } -> {}
//   GET    /containers?all=1               -> ContainerJson[]   (running only unless all=1)
//   POST   /containers          RunSpec   -> RunResult
//   GET    /containers/:ref/json           -> ContainerJson
//   POST   /containers/:ref/started  { pid } -> {}               (foreground run: the CLI reports its child)
//   POST   /containers/:ref/exited   { exitCode } -> {}          (foreground run: the child ended)
//   POST   /containers/:ref/stop     { timeout?: number } -> {}
//   POST   /containers/:ref/start          -> RunResult
//   DELETE /containers/:ref?force=1        -> {}
//   GET    /containers/:ref/logs?follow=1  -> text/plain stream
//   POST   /containers/:ref/exec     ExecSpec -> Launch          (the CLI spawns it)
//   GET    /stats                          -> StatsJson
//   POST   /system/prune                   -> { removed: string[] }
//   POST   /images/pull         PullSpec  -> PullJson
//   GET    /images                         -> ImageSummaryJson[]
//   GET    /images/:ref/json               -> ImageInspectJson   (ref = name[:tag], name@digest, ID or ID prefix)
//   DELETE /images/:ref?force=1            -> RemovedImageJson
//   POST   /images/save         SaveSpec  -> {}
//   POST   /images/load         { file }  -> LoadedJson
//   POST   /images/prune?all=1             -> PrunedImagesJson
//   POST   /podman/serve        PodmanServeSpec -> NDJSON stream, open while that aardvark-dns lives:
//                                  {"networks":N,"watching":bool} once its listeners answer, {"end":"replaced"|"stopping"}
//   POST   /podman/reload       { dir, pid } -> { networks: number }
//   GET    /podman                         -> PodmanDirJson[]

export interface ApiError {
  code: string; // DnsnetError code
  message: string; // "<doing what>: <why>"
}

export interface NetworkCreateSpec {
  name: string;
  driver?: string; // -d (default bridge)
  subnets: string[]; // --subnet, repeatable (one v4, one v6 at most)
  gateways: string[]; // --gateway, matched to subnets by family
  ipRange?: string;
  ipv6: boolean;
  internal: boolean;
  options: Record<string, string>; // -o key=value (mtu)
  attachable?: boolean; // --attachable (overlay)
}

export interface ConnectSpec {
  container: string;
  aliases: string[];
  ip?: string;
}

export interface RunSpec {
  name?: string;
  detach: boolean;
  autoRemove: boolean;
  network?: string; // default: the network `bridge`
  hostname?: string;
  ip?: string;
  networkAliases: string[];
  links: string[]; // NAME[:ALIAS]
  extraHosts: string[]; // NAME:IP
  dns: string[];
  dnsSearch: string[];
  dnsOptions: string[];
  env: string[]; // K=V, or K to take it from the caller
  workdir?: string;
  rootfs?: string;
  /** `run IMAGE`: --entrypoint ('' clears the image's) and -u/--user. */
  entrypoint?: string;
  user?: string;
  /** -p/--publish, as given: [IP:][HOSTPORT:]CPORT[/PROTO], ranges too. */
  publish?: string[];
  /** -P/--publish-all: every exposed port to an ephemeral host port. */
  publishAll?: boolean;
  /** --expose PORT[/PROTO] or a range. */
  expose?: string[];
  cmd: string[];
  callerEnv?: Record<string, string>; // for `-e K` without a value
}

/** How to start a process inside a sandbox: the CLI (foreground) or the supervisor (-d) spawns it. */
export interface Launch {
  argv: string[]; // argv[0] is an absolute path
  env: Record<string, string>;
}

export interface RunResult {
  id: string;
  name: string;
  /** Docker's run warnings (a loopback --dns): the CLI prints each as `WARNING: ...` on stderr. */
  warnings?: string[];
  launch?: Launch; // foreground only: the CLI spawns this and reports started/exited
}

export interface ExecSpec {
  cmd: string[];
  env: string[];
  workdir?: string;
  callerEnv?: Record<string, string>;
}

/** Docker's `network inspect` shape (the fields dnsnet fills). */
export interface NetworkJson {
  Name: string;
  Id: string;
  Created: string;
  /** `global`: an overlay network, the same on every host of the cluster. */
  Scope: 'local' | 'global';
  Driver: 'bridge' | 'host' | 'null' | 'overlay';
  EnableIPv6: boolean;
  IPAM: { Driver: 'default'; Options: Record<string, string>; Config: { Subnet: string; Gateway: string; IPRange?: string }[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  Containers: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }>;
  Options: Record<string, string>;
  Labels: Record<string, string>;
  /** overlay: the hosts (advertise addresses) with containers on it, this one included when it has any (Docker's Peers). */
  Peers?: { Name: string; IP: string }[];
}

export interface PortBindingJson {
  HostIp: string;
  HostPort: string;
}

/** Docker's `inspect` shape for a container (the fields dnsnet fills). */
export interface ContainerJson {
  Id: string;
  Created: string;
  /** `run IMAGE`: the image's ID (Config.Image: the reference as given). */
  Image?: string;
  Path: string;
  Args: string[];
  State: { Status: string; Running: boolean; Pid: number; ExitCode: number; Error: string; StartedAt: string; FinishedAt: string };
  Name: string; // "/name", as Docker does
  ResolvConfPath: string;
  HostnamePath: string;
  HostsPath: string;
  LogPath: string;
  HostConfig: {
    Dns: string[];
    DnsSearch: string[];
    DnsOptions: string[];
    ExtraHosts: string[];
    /** Legacy links (default network), Docker's form `/target:/linker/alias`; null on a user-defined network. */
    Links: string[] | null;
    NetworkMode: string;
    AutoRemove: boolean;
    /** -p as given, by container port (`80/tcp`): HostIp '' = every address, HostPort '' = ephemeral. */
    PortBindings: Record<string, PortBindingJson[]>;
    PublishAllPorts: boolean;
  };
  Config: { Hostname: string; Domainname: string; Env: string[]; Cmd: string[]; WorkingDir: string; Rootfs?: string; Image?: string; User?: string; ExposedPorts: Record<string, Record<string, never>> };
  NetworkSettings: {
    /** While it runs: each exposed port, with the host ports it is published on, or null. */
    Ports: Record<string, PortBindingJson[] | null>;
    Networks: Record<
      string,
      {
        NetworkID: string;
        EndpointID: string;
        Gateway: string;
        IPAddress: string;
        IPPrefixLen: number;
        IPv6Gateway: string;
        GlobalIPv6Address: string;
        GlobalIPv6PrefixLen: number;
        MacAddress: string;
        Aliases: string[];
        /** `--link` on a user-defined network, as given (`target:alias`); null elsewhere, as Docker shows them. */
        Links: string[] | null;
        DNSNames: string[];
      }
    >;
  };
  Dnsnet: { ResolvConfEdited: boolean; Upstreams: string[]; Netns: string };
}

export interface StatsJson {
  resolver: Record<string, number | Record<string, Record<string, number>>>;
  /** The resolver of Podman's networks (daemon/podman.ts). */
  podman?: Record<string, number | Record<string, Record<string, number>>>;
}

/** An aardvark-dns process of ours registering netavark's directory (`<config>/aardvark-dns`). */
export interface PodmanServeSpec {
  dir: string;
  port: number;
  /** The aardvark-dns process: its netns is where the listeners live, and it stays while they do. */
  pid: number;
}

/** `dnsnet system podman ls`: a directory served, and its networks. */
export interface PodmanDirJson {
  dir: string;
  port: number;
  pid: number;
  /** 'daemon' (the daemon's own netns) or the netns path of the aardvark-dns process. */
  netns: string;
  networks: { name: string; internal: boolean; listen: string[]; containers: number }[];
}

/** `dnsnet pull`: a reference, and whether TLS is required (false: plain HTTP, Podman's --tls-verify=false). */
export interface PullSpec {
  ref: string;
  tlsVerify?: boolean;
}

export interface PullJson {
  ref: string; // familiar, as pulled: busybox:latest
  id: string; // sha256:<config>
  digest: string; // of the manifest
  fetched: number;
  present: number;
  progress: string[];
}

/** Docker's image list entry (GET /images/json). */
export interface ImageSummaryJson {
  Id: string;
  ParentId: string;
  RepoTags: string[];
  RepoDigests: string[];
  Created: number; // unix seconds
  Size: number;
  SharedSize: number;
  VirtualSize: number;
  Labels: Record<string, string> | null;
  Containers: number;
}

/** Docker's `image inspect` shape (the fields dnsnet fills). */
export interface ImageInspectJson {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Parent: string;
  Comment: string;
  Created: string;
  Os: string;
  Architecture: string;
  Size: number;
  VirtualSize: number;
  Config: Record<string, unknown>;
  RootFS: { Type: 'layers'; Layers: string[] };
  Dnsnet: { Pulled: string; Layers: { Digest: string; MediaType: string; Size: number }[] };
}

export interface RemovedImageJson {
  untagged: string[];
  deleted: string[];
}

/** `dnsnet save`: images into a tar file (absolute path). `dnsnet load`: what a tar held. */
export interface SaveSpec {
  refs: string[];
  file: string;
}

export interface LoadedJson {
  tags: string[];
  ids: string[];
}

/** `image prune`: what was untagged and deleted, and the bytes of their layers. */
export interface PrunedImagesJson {
  untagged: string[];
  deleted: string[];
  reclaimed: number;
}

/** One event (`dnsnet events`), Docker's shape. */
export interface EventJson {
  Type: 'container' | 'network' | 'daemon';
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local' | 'global';
  /** Unix seconds, and nanoseconds (ms precision). */
  time: number;
  timeNano: number;
}

/** What `dnsnet events` asks for: time bounds in ns since the epoch, filters (`--filter k=v`, any of each key). */
export interface EventQuery {
  since?: number;
  until?: number;
  filters?: Record<string, string[]>;
}

/** `dnsnet system info`. */
export interface InfoJson {
  Version: string;
  NodeVersion: string;
  StateRoot: string;
  RunRoot: string;
  Socket: string;
  DaemonPid: number;
  DaemonStarted: string;
  UptimeSeconds: number;
  ResolverUdpPath: 'native' | 'dgram';
  Containers: { Total: number; Running: number; Created: number; Exited: number };
  Networks: { Total: number; ByDriver: Record<string, number> };
  Images: number;
  HostResolvConf: { Path: string; Nameservers: string[]; Upstreams: string[] };
  Cluster?: { Store: string[]; Advertise: string; State: string; LeaseTTLSeconds: number };
  MetricsAddr?: string;
}
