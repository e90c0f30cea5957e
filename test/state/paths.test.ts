import { describe, expect, it } from 'vitest';
import { netnsName, netnsPath } from '../../src/state/kernel-names.js';
import { defaultBridgeFor, paths, rootsFromEnv } from '../../src/state/paths.js';

describe('roots and names', () => {
  it('uses Docker-like defaults', () => {
    const r = rootsFromEnv({});
    expect(r).toEqual({
      stateRoot: '/var/lib/dnsnet',
      runRoot: '/run/dnsnet',
      hostResolvConf: '/etc/resolv.conf',
      systemdResolvConf: '/run/systemd/resolve/resolv.conf',
      hostHosts: '/etc/hosts',
      defaultBridge: 'dnsnet0',
    });
  });

  it('gives every other state root its own default bridge name, at most 15 characters', () => {
    const a = defaultBridgeFor('/tmp/a');
    const b = defaultBridgeFor('/tmp/b');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^dnsnet[0-9a-f]{8}$/);
    expect(a.length).toBeLessThanOrEqual(15);
    expect(rootsFromEnv({ DNSNET_ROOT: '/tmp/a' }).defaultBridge).toBe(a);
    expect(rootsFromEnv({ DNSNET_ROOT: '/tmp/a', DNSNET_DEFAULT_BRIDGE: 'mine0' }).defaultBridge).toBe('mine0');
  });

  it('names a container netns after the short ID', () => {
    const id = 'ab'.repeat(32);
    expect(netnsName(id)).toBe('dnsnet-abababababab');
    expect(netnsPath(id)).toBe('/run/netns/dnsnet-abababababab');
  });
});
