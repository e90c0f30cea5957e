// Records -> Docker's JSON shapes for `network inspect` and `inspect`, so jq habits carry over.
import type { ContainerJson, NetworkJson } from '../api/types.js';
import { netnsPath } from '../state/kernel-names.js';
import { paths, type Roots } from '../state/paths.js';
import type { ContainerRecord, NetworkRecord } from '../state/types.js';
import { formatLink, inspectLink } from '../state/links.js';

const ZERO_TIME = '0001-01-01T00:00:00Z';

export function networkJson(net: NetworkRecord, containers: Iterable<ContainerRecord>): NetworkJson {
  const attached: NetworkJson['Containers'] = {};
  for (const c of containers) {
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
  const options: Record<string, string> = { 'com.docker.network.bridge.name': net.device, 'com.docker.network.driver.mtu': String(net.mtu) };
  if (net.isDefault) options['com.docker.network.bridge.default_bridge'] = 'true';
  return {
    Name: net.name,
    Id: net.id,
    Created: net.created,
    Scope: 'local',
    Driver: 'bridge',
    EnableIPv6: net.enableIPv6,
    IPAM: {
      Driver: 'default',
      Options: {},
      Config: net.ipam.map((c) => ({ Subnet: c.subnet, Gateway: c.gateway, ...(c.ipRange ? { IPRange: c.ipRange } : {}) })),
    },
    Internal: net.internal,
    Attachable: false,
    Ingress: false,
    Containers: attached,
    Options: options,
    Labels: {},
  };
}

export function endpointId(containerId: string, networkId: string): string {
  // Stable and unique per (container, network) without storing another ID.
  return (containerId.slice(0, 32) + networkId.slice(0, 32)).slice(0, 64);
}

export function containerJson(roots: Roots, c: ContainerRecord, networks: Map<string, NetworkRecord>, upstreams: string[]): ContainerJson {
  const nets: ContainerJson['NetworkSettings']['Networks'] = {};
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
  const onDefault = [...networks.values()].some((n) => n.isDefault && n.name === c.network);
  return {
    Id: c.id,
    Created: c.created,
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
    ResolvConfPath: paths.resolvConfFile(roots, c.id),
    HostnamePath: paths.hostnameFile(roots, c.id),
    HostsPath: paths.hostsFile(roots, c.id),
    LogPath: c.detach ? paths.logFile(roots, c.id) : '',
    HostConfig: {
      Dns: c.dns,
      DnsSearch: c.dnsSearch,
      DnsOptions: c.dnsOptions,
      ExtraHosts: c.extraHosts.map((h) => `${h.name}:${h.ip}`),
      Links: onDefault && c.links.length > 0 ? c.links.map((l) => inspectLink(c.name, l)) : null,
      NetworkMode: c.network,
      AutoRemove: c.autoRemove,
    },
    Config: {
      Hostname: c.hostname,
      Domainname: c.domainname,
      Env: c.env,
      Cmd: c.cmd,
      WorkingDir: c.workdir,
      ...(c.rootfs ? { Rootfs: c.rootfs } : {}),
    },
    NetworkSettings: { Networks: nets },
    Dnsnet: {
      ResolvConfEdited: c.resolvConfEdited ?? false,
      Upstreams: upstreams,
      Netns: s.status === 'running' ? netnsPath(c.id) : '',
    },
  };
}
