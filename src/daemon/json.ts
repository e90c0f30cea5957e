// Records -> Docker's JSON shapes for `network inspect` and `inspect`, so jq habits carry over.
import type { ContainerJson, NetworkJson, PortBindingJson } from '../api/types.js';
import { portKey } from '../ports/spec.js';
import { netnsPath } from '../state/kernel-names.js';
import { paths, type Roots } from '../state/paths.js';
import { isModeNetwork, type ContainerRecord, type NetworkRecord } from '../state/types.js';
import { formatLink, inspectLink } from '../state/links.js';

const ZERO_TIME = '0001-01-01T00:00:00Z';

const EMPTY_ENDPOINT: ContainerJson['NetworkSettings']['Networks'][string] = {
  NetworkID: '',
  EndpointID: '',
  Gateway: '',
  IPAddress: '',
  IPPrefixLen: 0,
  IPv6Gateway: '',
  GlobalIPv6Address: '',
  GlobalIPv6PrefixLen: 0,
  MacAddress: '',
  Aliases: [],
  Links: null,
  DNSNames: [],
};

export function networkJson(net: NetworkRecord, containers: Iterable<ContainerRecord>, peers?: string[]): NetworkJson {
  const attached: NetworkJson['Containers'] = {};
  for (const c of containers) {
    // `host` and `none` list their running containers, with no address (as Docker does).
    if (isModeNetwork(net) && c.network === net.name && c.state.status === 'running') {
      attached[c.id] = { Name: c.name, EndpointID: endpointId(c.id, net.id), MacAddress: '', IPv4Address: '', IPv6Address: '' };
    }
    for (const ep of c.endpoints) {
      if (ep.networkId !== net.id) continue;
      attached[c.id] = {
        Name: c.name,
        EndpointID: endpointId(c.id, net.id),
        MacAddress: ep.mac,
        IPv4Address: `${ep.ipv4}/${ep.prefixLen}`,
        IPv6Address: ep.ipv6 ? `${ep.ipv6}/${ep.prefixLen6 ?? 64}` : '',
      };
    }
  }
  const options: Record<string, string> = net.driver === 'bridge' ? { 'com.docker.network.bridge.name': net.device, 'com.docker.network.driver.mtu': String(net.mtu) } : {};
  if (net.isDefault) options['com.docker.network.bridge.default_bridge'] = 'true';
  if (net.driver === 'overlay') options['com.docker.network.driver.overlay.vxlanid_list'] = String(net.vni ?? 0);
  return {
    Name: net.name,
    Id: net.id,
    Created: net.created,
    Scope: net.driver === 'overlay' ? 'global' : 'local',
    Driver: net.driver,
    EnableIPv6: net.enableIPv6,
    IPAM: {
      Driver: 'default',
      Options: {},
      Config: net.ipam.map((c) => ({ Subnet: c.subnet, Gateway: c.gateway, ...(c.ipRange ? { IPRange: c.ipRange } : {}) })),
    },
    Internal: net.internal,
    Attachable: net.attachable ?? false,
    Ingress: false,
    Containers: attached,
    Options: options,
    Labels: {},
    ...(net.driver === 'overlay' ? { Peers: (peers ?? []).map((ip) => ({ Name: ip, IP: ip })) } : {}),
  };
}

export function endpointId(containerId: string, networkId: string): string {
  // Stable and unique per (container, network) without storing another ID.
  return (containerId.slice(0, 32) + networkId.slice(0, 32)).slice(0, 64);
}

export function containerJson(roots: Roots, c: ContainerRecord, networks: Map<string, NetworkRecord>, upstreams: string[]): ContainerJson {
  const nets: ContainerJson['NetworkSettings']['Networks'] = {};
  const running = c.state.status === 'running';
  // `host` and `none` show as a network with no address; a joined container shows none (Docker's shapes).
  const mode = c.netContainer === undefined ? [...networks.values()].find((n) => n.name === c.network && isModeNetwork(n)) : undefined;
  if (mode) nets[mode.name] = { ...EMPTY_ENDPOINT, NetworkID: mode.id, EndpointID: running ? endpointId(c.id, mode.id) : '' };
  for (const ep of c.endpoints) {
    const net = networks.get(ep.networkId);
    const isDefault = net?.isDefault ?? false;
    nets[ep.networkName] = {
      NetworkID: ep.networkId,
      EndpointID: endpointId(c.id, ep.networkId),
      Gateway: ep.gateway,
      IPAddress: ep.ipv4,
      IPPrefixLen: ep.prefixLen,
      IPv6Gateway: ep.gateway6 ?? '',
      GlobalIPv6Address: ep.ipv6 ?? '',
      GlobalIPv6PrefixLen: ep.ipv6 ? (ep.prefixLen6 ?? 64) : 0,
      MacAddress: ep.mac,
      Aliases: ep.aliases,
      Links: isDefault || c.links.length === 0 ? null : c.links.map(formatLink),
      DNSNames: isDefault ? [] : [c.name, ...ep.aliases, c.id.slice(0, 12), ...(c.hostname !== c.id.slice(0, 12) ? [c.hostname] : [])],
    };
  }
  const s = c.state;
  const files = c.netContainer ?? c.id; // a joined container uses the files of the one it joins
  const onDefault = [...networks.values()].some((n) => n.isDefault && n.name === c.network);
  return {
    Id: c.id,
    Created: c.created,
    ...(c.image ? { Image: c.image.id } : {}),
    Path: c.cmd[0] ?? '',
    Args: c.cmd.slice(1),
    State: {
      Status: s.status,
      Running: s.status === 'running',
      Pid: s.status === 'running' ? s.pid : 0,
      ExitCode: s.exitCode,
      Error: s.error ?? '',
      StartedAt: s.startedAt ?? ZERO_TIME,
      FinishedAt: s.finishedAt ?? ZERO_TIME,
    },
    Name: `/${c.name}`,
    ResolvConfPath: paths.resolvConfFile(roots, files),
    HostnamePath: paths.hostnameFile(roots, files),
    HostsPath: paths.hostsFile(roots, files),
    LogPath: c.detach ? paths.logFile(roots, c.id) : '',
    HostConfig: {
      Dns: c.dns,
      DnsSearch: c.dnsSearch,
      DnsOptions: c.dnsOptions,
      ExtraHosts: c.extraHosts.map((h) => `${h.name}:${h.ip}`),
      Links: onDefault && c.links.length > 0 ? c.links.map((l) => inspectLink(c.name, l)) : null,
      NetworkMode: c.network,
      AutoRemove: c.autoRemove,
      PortBindings: portBindingsJson(c),
      PublishAllPorts: c.publishAll ?? false,
    },
    Config: {
      Hostname: c.hostname,
      Domainname: c.domainname,
      Env: c.env,
      Cmd: c.cmd,
      WorkingDir: c.workdir,
      ...(c.rootfs ? { Rootfs: c.rootfs } : {}),
      ...(c.image ? { Image: c.image.ref, User: c.image.user } : {}),
      ExposedPorts: Object.fromEntries((c.exposedPorts ?? []).map((k) => [k, {}])),
    },
    NetworkSettings: { Ports: running ? portsJson(c) : {}, Networks: nets },
    Dnsnet: {
      ResolvConfEdited: c.resolvConfEdited ?? false,
      Upstreams: upstreams,
      Netns: !running || c.network === 'host' ? '' : netnsPath(c.netContainer ?? c.id),
    },
  };
}

function portBindingsJson(c: ContainerRecord): Record<string, PortBindingJson[]> {
  const out: Record<string, PortBindingJson[]> = {};
  for (const b of c.portBindings ?? []) (out[portKey(b.containerPort, b.proto)] ??= []).push({ HostIp: b.hostIp, HostPort: b.hostPort });
  return out;
}

/** NetworkSettings.Ports: every exposed port, with where it is published now (null: exposed only). */
function portsJson(c: ContainerRecord): Record<string, PortBindingJson[] | null> {
  const out: Record<string, PortBindingJson[] | null> = {};
  for (const k of c.exposedPorts ?? []) out[k] = null;
  for (const p of c.ports ?? []) (out[portKey(p.containerPort, p.proto)] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  return out;
}
