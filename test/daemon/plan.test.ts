// A container's plan and the bridge driver's pure parts, as tables (no root, no kernel).
import { describe, expect, it } from 'vitest';
import type { RunSpec } from '../../src/api/types.js';
import { bridgeDriver } from '../../src/daemon/drivers/bridge.js';
import {
  attachPlans,
  buildEnv,
  hostsText,
  planEndpoint,
  planRun,
  resolvConf,
  resolverView,
  usesEmbeddedDns,
  type World,
} from '../../src/daemon/plan.js';
import { parseResolvConf } from '../../src/resolvconf/index.js';
import { vethName } from '../../src/state/kernel-names.js';
import type { ContainerRecord, NetworkRecord } from '../../src/state/types.js';

const hex = (c: string) => c.repeat(64);

function network(over: Partial<NetworkRecord> & Pick<NetworkRecord, 'id' | 'name'>): NetworkRecord {
  return { schema: 1, created: '2026-01-01T00:00:00Z', driver: 'bridge', isDefault: false, internal: false, enableIPv6: false, mtu: 1500, device: `dn-${over.id.slice(0, 12)}`, ipam: [], options: {}, ...over };
}

const DEFAULT = network({ id: hex('d'), name: 'bridge', isDefault: true, device: 'dnsnet0', ipam: [{ subnet: '172.17.0.0/16', gateway: '172.17.0.1' }] });
const APP = network({ id: hex('a'), name: 'app', ipam: [{ subnet: '10.10.0.0/24', gateway: '10.10.0.1' }] });
const VAULT = network({ id: hex('b'), name: 'vault', internal: true, ipam: [{ subnet: '10.20.0.0/24', gateway: '10.20.0.1' }] });

function container(over: Partial<ContainerRecord> & Pick<ContainerRecord, 'id' | 'name'>): ContainerRecord {
  return {
    schema: 1,
    created: '2026-01-01T00:00:00Z',
    hostname: over.id.slice(0, 12),
    domainname: '',
    cmd: ['sleep', 'infinity'],
    env: [],
    workdir: '/',
    detach: true,
    autoRemove: false,
    network: 'app',
    networkAliases: [],
    links: [],
    extraHosts: [],
    dns: [],
    dnsSearch: [],
    dnsOptions: [],
    state: { status: 'running', pid: 100, exitCode: 0 },
    endpoints: [],
    files: {},
    ...over,
  };
}

/** db runs on app (10.10.0.2) and on the default network (172.17.0.2). */
function world(): World {
  const db = container({ id: hex('1'), name: 'db' });
  db.endpoints = [bridgeDriver.planEndpoint(db, APP, { aliases: ['store'], index: 0, used: new Set() }), bridgeDriver.planEndpoint(db, DEFAULT, { aliases: [], index: 1, used: new Set() })];
  const hostText = 'nameserver 127.0.0.53\nsearch corp.example\n';
  const parsed = parseResolvConf(hostText);
  return {
    roots: { stateRoot: '/tmp/s', runRoot: '/tmp/r', hostResolvConf: '/tmp/h', systemdResolvConf: '/tmp/sd', hostHosts: '/tmp/hh', defaultBridge: 'dnsnet0' },
    networks: new Map([DEFAULT, APP, VAULT].map((n) => [n.id, n])),
    containers: new Map([[db.id, db]]),
    host: { path: '/tmp/h', text: hostText, parsed, legacy: { path: '/tmp/h', parsed }, systemdText: '' },
    loIPv6: false,
    hostName: 'testhost',
    hostHosts: () => '127.0.0.1\tlocalhost\n',
    findImage: () => undefined,
    imageFile: () => undefined,
    imageLayerDir: (d: string) => `/tmp/layers/${d}`,
  };
}

function spec(over: Partial<RunSpec> = {}): RunSpec {
  return { detach: true, autoRemove: false, networkAliases: [], links: [], extraHosts: [], dns: [], dnsSearch: [], dnsOptions: [], env: [], cmd: ['true'], network: 'app', ...over };
}

const exists = () => true;

describe('planRun: what a run may ask for', () => {
  it.each<[string, Partial<RunSpec>, RegExp]>([
    ['no command', { cmd: [] }, /no command given/],
    ['a bad name', { name: 'bad name' }, /invalid container name "bad name"/],
    ['a name in use', { name: 'db' }, /the container name "db" is already in use/],
    ['no such network', { network: 'nosuch' }, /no such network: nosuch/],
    ['aliases on the default network', { network: 'bridge', networkAliases: ['x'] }, /only supported for user-defined networks/],
    ['a bad alias', { networkAliases: ['bad alias'] }, /invalid --network-alias value "bad alias"/],
    ['a link to nothing on the default network', { network: 'bridge', links: ['ghost:g'] }, /no such container: ghost/],
    ['a link with no target', { links: [':a'] }, /expected NAME\[:ALIAS\]/],
    ['a relative workdir', { workdir: 'rel' }, /not an absolute path/],
    ['-e =x', { env: ['=x'] }, /invalid environment variable "=x"/],
  ])('%s is refused', (_, over, why) => {
    expect(() => planRun(world(), spec(over), hex('9'), exists)).toThrow(why);
  });

  it('a --rootfs without /etc/hosts is refused', () => {
    expect(() => planRun(world(), spec({ rootfs: '/srv/root' }), hex('9'), (p) => p !== '/srv/root/etc/hosts')).toThrow(/has no \/etc\/hosts/);
  });

  it('keeps links parsed and by name: an ID prefix becomes the name; a container yet to come stays as given', () => {
    const { record } = planRun(world(), spec({ links: [`${hex('1').slice(0, 8)}:database`, 'later:lt', 'db'] }), hex('9'), exists);
    expect(record.links).toEqual([
      { target: 'db', alias: 'database' },
      { target: 'later', alias: 'lt' },
      { target: 'db', alias: 'db' },
    ]);
  });

  it('takes -e K from the caller, leaves an unset one out, and names the container when not named', () => {
    const { record, net } = planRun(world(), spec({ env: ['A=1', 'B', 'C'], callerEnv: { B: 'two' } }), hex('9'), exists);
    expect(record.env).toEqual(['A=1', 'B=two']);
    expect(record.name).toMatch(/^[a-z]+_[a-z]+\d*$/);
    expect(record.hostname).toBe(hex('9').slice(0, 12));
    expect(net.name).toBe('app');
    expect(record.state.status).toBe('created');
  });
});

describe('endpoints', () => {
  it('the lowest free address, a veth named for the pair, eth<index>', () => {
    const w = world();
    const c = container({ id: hex('2'), name: 'web' });
    const ep = planEndpoint(w, c, APP, ['www'], undefined, 0);
    expect(ep).toMatchObject({ ipv4: '10.10.0.3', ifname: 'eth0', hostVeth: vethName(c.id, APP.id), gateway: '10.10.0.1', prefixLen: 24, aliases: ['www'] });
    expect(planEndpoint(w, c, APP, [], '10.10.0.77', 1)).toMatchObject({ ipv4: '10.10.0.77', requestedIp: '10.10.0.77', ifname: 'eth1' });
  });

  it.each([
    ['10.10.0.2', /10\.10\.0\.2/], // taken by db
    ['10.99.0.5', /10\.99\.0\.5/], // outside the subnet
    ['fd00::5', /is IPv6, but network app has no IPv6 subnet/],
  ])('--ip %s is refused', (ip, why) => {
    expect(() => planEndpoint(world(), container({ id: hex('2'), name: 'web' }), APP, [], ip, 0)).toThrow(why);
  });

  it('the first endpoint carries the default route, unless its network is --internal; a connected one never', () => {
    const w = world();
    const c = container({ id: hex('2'), name: 'web' });
    c.endpoints = [planEndpoint(w, c, APP, [], undefined, 0), planEndpoint(w, c, VAULT, [], undefined, 1)];
    const [first, second] = attachPlans(w, c);
    expect(first).toMatchObject({ bridge: APP.device, gateway: '10.10.0.1', ifname: 'eth0', netns: `dnsnet-${c.id.slice(0, 12)}` });
    expect(second!.gateway).toBeUndefined();
    const inVault = container({ id: hex('3'), name: 'v', network: 'vault' });
    inVault.endpoints = [planEndpoint(w, inVault, VAULT, [], undefined, 0)];
    expect(attachPlans(w, inVault)[0]!.gateway).toBeUndefined();
  });
});

describe('names and files', () => {
  it('the default network has no embedded DNS; a user network has', () => {
    const w = world();
    expect(bridgeDriver.dnsMode(DEFAULT)).toBe('legacy');
    expect(bridgeDriver.dnsMode(APP)).toBe('embedded');
    expect(usesEmbeddedDns(w, container({ id: hex('4'), name: 'x', network: 'bridge' }))).toBe(false);
    expect(usesEmbeddedDns(w, container({ id: hex('4'), name: 'x', network: 'app' }))).toBe(true);
    expect(resolvConf(w, container({ id: hex('4'), name: 'x', network: 'app' })).nameservers).toEqual(['127.0.0.11']);
  });

  it('the resolver view: user networks only, links parsed, --dns from the container, no forwarding on --internal alone', () => {
    const w = world();
    const db = w.containers.get(hex('1'))!;
    expect(resolverView(w, db)).toMatchObject({ name: 'db', endpoints: [{ network: 'app', ipv4: '10.10.0.2', aliases: ['store'] }], dns: [], forward: true });
    const c = container({ id: hex('5'), name: 'v', network: 'vault', dns: ['10.20.0.9'], links: [{ target: 'db', alias: 'database' }] });
    c.endpoints = [planEndpoint(w, c, VAULT, [], undefined, 0)];
    expect(resolverView(w, c)).toMatchObject({ dns: ['10.20.0.9'], dnsNetns: `/run/netns/dnsnet-${c.id.slice(0, 12)}`, forward: false, links: [{ target: 'db', alias: 'database' }] });
  });

  it('a legacy link is a hosts line while its target has an address on the default network', () => {
    const w = world();
    const c = container({ id: hex('6'), name: 'app1', network: 'bridge', links: [{ target: 'db', alias: 'database' }] });
    c.endpoints = [planEndpoint(w, c, DEFAULT, [], undefined, 0)];
    expect(hostsText(w, c)).toContain(`172.17.0.2\tdatabase ${hex('1').slice(0, 12)} db`);
    w.containers.get(hex('1'))!.endpoints = [];
    expect(hostsText(w, c)).not.toContain('database');
  });

  it.each([
    [[], undefined, [], { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOSTNAME: 'h', HOME: '/root' }],
    [['A=1'], { TERM: 'xterm' }, ['B=2'], { A: '1', B: '2', TERM: 'xterm' }],
    [['A=1'], { C: '3' }, ['C', 'A=9'], { A: '9', C: '3' }],
  ] as const)('buildEnv(%j, %j, %j)', (env, caller, extra, want) => {
    const c = container({ id: hex('7'), name: 'e', hostname: 'h', env: [...env] });
    expect(buildEnv(c, caller as Record<string, string> | undefined, [...extra])).toMatchObject(want);
  });
});

describe('extra hosts', () => {
  it('are kept parsed, host-gateway as such; the hosts file gets the gateway of the moment', () => {
    const w = world();
    const { record } = planRun(w, spec({ extraHosts: ['db.local:10.1.2.3', 'gw:host-gateway', 'v6:[fd00::1]'] }), hex('9'), exists);
    expect(record.extraHosts).toEqual([
      { name: 'db.local', ip: '10.1.2.3' },
      { name: 'gw', ip: 'host-gateway' },
      { name: 'v6', ip: 'fd00::1' },
    ]);
    record.endpoints = [planEndpoint(w, record, APP, [], undefined, 0)];
    expect(hostsText(w, record)).toContain('172.17.0.1\tgw');
    expect(() => planRun(w, spec({ extraHosts: ['nocolon'] }), hex('9'), exists)).toThrow(/--add-host/);
  });
});
