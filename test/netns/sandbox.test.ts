import { describe, expect, it } from 'vitest';
import { buildExecArgv, buildLaunchArgv, hostEndpointBatch, innerEndpointBatch, type EndpointPlan } from '../../src/netns/sandbox.js';

const plan: EndpointPlan = {
  netns: 'dnsnet-abcdefabcdef',
  hostVeth: 'vdn0123456789ab',
  ifname: 'eth0',
  bridge: 'dn-111122223333',
  mtu: 1400,
  mac: '02:42:ac:12:00:02',
  ipv4: '172.18.0.2',
  prefixLen: 16,
  gateway: '172.18.0.1',
};

describe('endpoint batches', () => {
  it('creates the peer straight inside the netns, on the bridge, with the MTU', () => {
    expect(hostEndpointBatch(plan)).toEqual([
      'link add vdn0123456789ab mtu 1400 type veth peer name eth0 mtu 1400 address 02:42:ac:12:00:02 netns dnsnet-abcdefabcdef',
      'link set vdn0123456789ab master dn-111122223333',
      'link set vdn0123456789ab type bridge_slave hairpin on',
      'link set vdn0123456789ab up',
    ]);
  });

  it('brings lo up once, adds addresses (v6 without DAD) and the default route', () => {
    expect(innerEndpointBatch({ ...plan, ipv6: 'fd00::2', prefixLen6: 64, gateway6: 'fd00::1' }, true)).toEqual([
      'link set lo up',
      'addr add 172.18.0.2/16 dev eth0',
      'addr add fd00::2/64 dev eth0 nodad',
      'link set eth0 up',
      'route add default via 172.18.0.1 dev eth0',
      'route add default via fd00::1 dev eth0',
    ]);
    const { gateway: _g, ...second } = plan;
    expect(innerEndpointBatch({ ...second, ifname: 'eth1' }, false)).toEqual(['addr add 172.18.0.2/16 dev eth1', 'link set eth1 up']);
  });
});

describe('launch argv', () => {
  const base = {
    netnsPath: '/run/netns/dnsnet-abcdefabcdef',
    hostsFile: '/s/hosts',
    hostnameFile: '/s/hostname',
    resolvConfFile: '/s/resolv.conf',
    hostname: 'web',
    workdir: '/',
    cmd: ['ping', '-c1', 'db'],
  };

  it('joins the netns, makes new mount and UTS namespaces, and ends with the command verbatim', () => {
    const argv = buildLaunchArgv(base);
    expect(argv.slice(0, 3)).toEqual(['/usr/bin/nsenter', '--net=/run/netns/dnsnet-abcdefabcdef', '--']);
    expect(argv).toContain('--mount');
    expect(argv).toContain('--uts');
    expect(argv.slice(-9)).toEqual(['/', '/', 'web', '/s/hosts', '/s/hostname', '/s/resolv.conf', 'ping', '-c1', 'db']);
  });

  it('passes --rootfs and refuses an empty command', () => {
    expect(buildLaunchArgv({ ...base, rootfs: '/srv/root' })).toContain('/srv/root');
    expect(() => buildLaunchArgv({ ...base, cmd: [] })).toThrow(/no command/);
  });

  it('exec enters the target process namespaces and root', () => {
    expect(buildExecArgv(42, '/tmp', ['ls'])).toEqual(['/usr/bin/nsenter', '--target=42', '--net', '--mount', '--uts', '--root', '--wdns=/tmp', '--', 'ls']);
    // An image's user: exec runs as it (a directory of the image is entered inside its root: --wdns).
    expect(buildExecArgv(42, '/srv', ['id'], { uid: 1000, gid: 1000 })).toEqual(['/usr/bin/nsenter', '--target=42', '--net', '--mount', '--uts', '--root', '--wdns=/srv', '--setuid=1000', '--setgid=1000', '--', 'id']);
  });
});
