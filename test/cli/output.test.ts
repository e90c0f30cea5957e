// Tables, JSON and Docker's status/age phrases.
import { describe, expect, it } from 'vitest';
import type { ContainerJson, NetworkJson } from '../../src/api/types.js';
import {
  formatCommand,
  formatContainerTable,
  formatCreated,
  formatIds,
  formatJsonArray,
  formatJsonLines,
  formatNetworkTable,
  formatPortLines,
  formatPorts,
  formatStatsTable,
  formatStatus,
  formatTable,
  humanDuration,
  sortContainers,
  sortNetworks,
} from '../../src/cli/output.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString();
const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('humanDuration (go-units)', () => {
  it.each([
    [0, 'Less than a second'],
    [999, 'Less than a second'],
    [1 * S, '1 second'],
    [3 * S, '3 seconds'],
    [59 * S, '59 seconds'],
    [60 * S, 'About a minute'],
    [119 * S, 'About a minute'],
    [2 * M, '2 minutes'],
    [59 * M, '59 minutes'],
    [60 * M, 'About an hour'],
    [89 * M, 'About an hour'],
    [90 * M, '2 hours'],
    [47 * H, '47 hours'],
    [48 * H, '2 days'],
    [13 * D, '13 days'],
    [14 * D, '2 weeks'],
    [60 * D, '2 months'],
    [800 * D, '2 years'],
  ])('%d ms -> %s', (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });
});

describe('formatStatus', () => {
  const state = (s: Partial<ContainerJson['State']>) => ({ Status: 'running', Running: false, ExitCode: 0, StartedAt: '', FinishedAt: '', ...s });
  it.each([
    ['running', state({ Status: 'running', Running: true, StartedAt: ago(3 * S) }), 'Up 3 seconds'],
    ['just started', state({ Status: 'running', Running: true, StartedAt: ago(0) }), 'Up Less than a second'],
    ['running for an hour', state({ Status: 'running', Running: true, StartedAt: ago(H) }), 'Up About an hour'],
    ['exited 0', state({ Status: 'exited', ExitCode: 0, FinishedAt: ago(2 * M) }), 'Exited (0) 2 minutes ago'],
    ['killed', state({ Status: 'exited', ExitCode: 137, FinishedAt: ago(5 * M) }), 'Exited (137) 5 minutes ago'],
    ['exited, time unknown', state({ Status: 'exited', ExitCode: 1, FinishedAt: '0001-01-01T00:00:00Z' }), 'Exited (1)'],
    ['created', state({ Status: 'created' }), 'Created'],
    ['removing', state({ Status: 'removing' }), 'Removal In Progress'],
    ['dead', state({ Status: 'dead' }), 'Dead'],
  ])('%s', (_name, s, text) => {
    expect(formatStatus(s, NOW)).toBe(text);
  });
});

describe('columns', () => {
  it('formatTable pads like Docker: max(width + 3, 10), last column bare', () => {
    expect(formatTable(['A', 'LONGER HEADER', 'C'], [['x', 'y', 'zzz']])).toBe(
      'A         LONGER HEADER   C\n' + //
        'x         y               zzz\n',
    );
  });

  it('formatCommand quotes and cuts to 20 characters', () => {
    expect(formatCommand({ Path: 'sleep', Args: ['infinity'] })).toBe('"sleep infinity"');
    expect(formatCommand({ Path: '/bin/sh', Args: ['-c', 'while true; do date; done'] })).toBe('"/bin/sh -c while tr…"');
  });

  it('formatCreated says how long ago', () => {
    expect(formatCreated(ago(3 * S), NOW)).toBe('3 seconds ago');
    expect(formatCreated('', NOW)).toBe('');
  });

  it('network ls', () => {
    const nets = [network('b'.repeat(64), 'zeta'), network('a'.repeat(64), 'bridge')];
    expect(formatNetworkTable(sortNetworks(nets))).toBe(
      'NETWORK ID     NAME      DRIVER    SCOPE\n' + //
        'aaaaaaaaaaaa   bridge    bridge    local\n' +
        'bbbbbbbbbbbb   zeta      bridge    local\n',
    );
  });

  it('ps, newest first', () => {
    const old = container('1'.repeat(64), '/old', ago(10 * M), { Status: 'exited', Running: false, ExitCode: 137, FinishedAt: ago(5 * M) });
    const web = container('2'.repeat(64), '/web', ago(4 * S), { Status: 'running', Running: true, StartedAt: ago(3 * S) }, { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }] });
    web.Config.Image = 'busybox:1.36';
    expect(formatContainerTable(sortContainers([old, web]), NOW)).toBe(
      'CONTAINER ID   IMAGE          COMMAND            CREATED          STATUS                       PORTS                  NAMES\n' +
        '222222222222   busybox:1.36   "sleep infinity"   4 seconds ago    Up 3 seconds                 0.0.0.0:8080->80/tcp   web\n' +
        '111111111111   -              "sleep infinity"   10 minutes ago   Exited (137) 5 minutes ago                          old\n',
    );
  });

  it('PORTS folds consecutive ports into ranges, IPv4 first, exposed-only ports last', () => {
    const b = (ip: string, port: number) => ({ HostIp: ip, HostPort: String(port) });
    const ports = {
      '80/tcp': [b('0.0.0.0', 8000), b('::', 8000)],
      '81/tcp': [b('0.0.0.0', 8001), b('::', 8001)],
      '82/tcp': [b('0.0.0.0', 8002), b('::', 8002)],
      '53/udp': [b('127.0.0.1', 5353)],
      '443/tcp': null,
    };
    expect(formatPorts(ports)).toBe('443/tcp, 0.0.0.0:8000-8002->80-82/tcp, 127.0.0.1:5353->53/udp, [::]:8000-8002->80-82/tcp');
    expect(formatPortLines(ports)).toBe(
      '53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8000\n80/tcp -> [::]:8000\n81/tcp -> 0.0.0.0:8001\n81/tcp -> [::]:8001\n82/tcp -> 0.0.0.0:8002\n82/tcp -> [::]:8002\n',
    );
    expect(formatPortLines(ports, '81/tcp')).toBe('0.0.0.0:8001\n[::]:8001\n');
    expect(formatPortLines(ports, '443/tcp')).toBe('');
  });

  it('-q prints short IDs, one a line', () => {
    expect(formatIds(['a'.repeat(64), 'b'.repeat(64)])).toBe('aaaaaaaaaaaa\nbbbbbbbbbbbb\n');
  });

  it('stats shows the /metrics samples, histograms as count and sum', () => {
    const text = formatStatsTable(
      '# HELP dnsnet_resolver_received_total x\n# TYPE dnsnet_resolver_received_total counter\ndnsnet_resolver_received_total 5\n' +
        'dnsnet_resolver_queries_total{network="app",type="A",rcode="NOERROR"} 2\n' +
        'dnsnet_x_seconds_bucket{le="0.1"} 1\ndnsnet_x_seconds_sum 0.05\ndnsnet_x_seconds_count 1\n',
    );
    expect(text.split('\n').map((l) => l.split(/\s{2,}/))).toEqual([
      ['METRIC', 'VALUE'],
      ['dnsnet_resolver_received_total', '5'],
      ['dnsnet_resolver_queries_total{network="app",type="A",rcode="NOERROR"}', '2'],
      ['dnsnet_x_seconds_sum', '0.05'],
      ['dnsnet_x_seconds_count', '1'],
      [''],
    ]);
  });
});

describe('JSON', () => {
  it('inspect prints a 2-space array, even for one', () => {
    expect(formatJsonArray([{ Name: 'a' }])).toBe('[\n  {\n    "Name": "a"\n  }\n]\n');
    expect(formatJsonArray([])).toBe('[]\n');
  });

  it('ls --format json prints one object a line (jq .Name works)', () => {
    expect(formatJsonLines([{ Name: 'a' }, { Name: 'b' }])).toBe('{"Name":"a"}\n{"Name":"b"}\n');
  });
});

function network(id: string, name: string): NetworkJson {
  return {
    Name: name,
    Id: id,
    Created: ago(H),
    Scope: 'local',
    Driver: 'bridge',
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: [] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    Containers: {},
    Options: {},
    Labels: {},
  };
}

function container(id: string, name: string, created: string, state: Partial<ContainerJson['State']>, ports: ContainerJson['NetworkSettings']['Ports'] = {}): ContainerJson {
  return {
    Id: id,
    Created: created,
    Path: 'sleep',
    Args: ['infinity'],
    State: { Status: 'running', Running: false, Pid: 0, ExitCode: 0, Error: '', StartedAt: '', FinishedAt: '', ...state },
    Name: name,
    ResolvConfPath: '',
    HostnamePath: '',
    HostsPath: '',
    LogPath: '',
    HostConfig: { Dns: [], DnsSearch: [], DnsOptions: [], ExtraHosts: [], Links: [], NetworkMode: 'bridge', AutoRemove: false, PortBindings: {}, PublishAllPorts: false },
    Config: { Hostname: id.slice(0, 12), Domainname: '', Env: [], Cmd: ['sleep', 'infinity'], WorkingDir: '/', ExposedPorts: {} },
    NetworkSettings: { Ports: ports, Networks: {} },
    Dnsnet: { ResolvConfEdited: false, Upstreams: [], Netns: '' },
  };
}
