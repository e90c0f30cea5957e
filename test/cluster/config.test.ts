// The daemon's cluster settings and what an overlay network refuses at create (pure).
import { describe, expect, it } from 'vitest';
import { clusterConfig, DEFAULT_TTL } from '../../src/cluster/config.js';
import { checkOverlaySpec } from '../../src/daemon/drivers/index.js';
import type { NetworkCreateSpec } from '../../src/api/types.js';

describe('clusterConfig', () => {
  it('no settings: no cluster', () => {
    expect(clusterConfig({})).toBeUndefined();
    expect(clusterConfig({ DNSNET_CLUSTER_STORE: ' ', DNSNET_CLUSTER_ADVERTISE: '' })).toBeUndefined();
  });

  it('reads Docker-style etcd:// lists, the advertise address and the TTL', () => {
    expect(clusterConfig({ DNSNET_CLUSTER_STORE: 'etcd://192.168.1.5:2379,192.168.1.6:2379/', DNSNET_CLUSTER_ADVERTISE: '192.168.1.10' })).toEqual({
      endpoints: ['http://192.168.1.5:2379', 'http://192.168.1.6:2379'],
      advertise: '192.168.1.10',
      prefix: '/dnsnet/',
      ttl: DEFAULT_TTL,
    });
    expect(clusterConfig({ DNSNET_CLUSTER_STORE: 'etcd://[fd00::1]:2379', DNSNET_CLUSTER_ADVERTISE: '10.1.1.1', DNSNET_CLUSTER_TTL: '3' })).toMatchObject({ endpoints: ['http://[fd00::1]:2379'], ttl: 3 });
  });

  it.each([
    [{ DNSNET_CLUSTER_STORE: 'etcd://1.2.3.4:2379' }, /needs --cluster-advertise/],
    [{ DNSNET_CLUSTER_ADVERTISE: '1.2.3.4' }, /needs --cluster-store/],
    [{ DNSNET_CLUSTER_STORE: 'consul://1.2.3.4:8500', DNSNET_CLUSTER_ADVERTISE: '1.2.3.4' }, /expected etcd:\/\/IP:PORT/],
    [{ DNSNET_CLUSTER_STORE: 'etcd://1.2.3.4', DNSNET_CLUSTER_ADVERTISE: '1.2.3.4' }, /member "1.2.3.4": expected IP:PORT/],
    [{ DNSNET_CLUSTER_STORE: 'etcd://1.2.3.4:99999', DNSNET_CLUSTER_ADVERTISE: '1.2.3.4' }, /expected IP:PORT/],
    [{ DNSNET_CLUSTER_STORE: 'etcd://1.2.3.4:2379', DNSNET_CLUSTER_ADVERTISE: 'eth0' }, /advertise address "eth0"/],
    [{ DNSNET_CLUSTER_STORE: 'etcd://1.2.3.4:2379', DNSNET_CLUSTER_ADVERTISE: '1.2.3.4', DNSNET_CLUSTER_TTL: '30' }, /from 1 to 10/],
  ])('refuses %o', (env, why) => {
    expect(() => clusterConfig(env)).toThrow(why);
  });
});

describe('checkOverlaySpec', () => {
  const spec = (over: Partial<NetworkCreateSpec>): NetworkCreateSpec => ({ name: 'ov', subnets: [], gateways: [], ipv6: false, internal: false, options: {}, driver: 'overlay', ...over });

  it('takes a name, one IPv4 subnet, --internal and --attachable', () => {
    expect(() => checkOverlaySpec(spec({}))).not.toThrow();
    expect(() => checkOverlaySpec(spec({ subnets: ['10.9.0.0/24'], internal: true, attachable: true }))).not.toThrow();
  });

  it.each([
    [{ ipv6: true }, /IPv4 only/],
    [{ subnets: ['10.9.0.0/24', '10.9.1.0/24'] }, /one subnet/],
    [{ subnets: ['fd00::/64'] }, /not IPv4/],
    [{ subnets: ['10.9.0.0/24'], gateways: ['10.9.0.254'] }, /--gateway is not supported/],
    [{ ipRange: '10.9.0.0/25' }, /--ip-range is not supported/],
    [{ options: { mtu: '9000' } }, /unknown overlay option "mtu"/],
  ])('refuses %o', (over, why) => {
    expect(() => checkOverlaySpec(spec(over))).toThrow(why);
  });
});
