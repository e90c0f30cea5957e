// allocateAddress: lowest free, reserved addresses, --ip, ip-range, exhaustion, IPv6; macFor.
import { describe, expect, it } from 'vitest';
import { DnsnetError } from '../../src/errors.js';
import { allocateAddress, macFor } from '../../src/ipam/index.js';
import type { IpamConfig } from '../../src/state/types.js';

const NET: IpamConfig = { subnet: '10.213.0.0/24', gateway: '10.213.0.1' };

function errorOf(fn: () => unknown): DnsnetError {
  try {
    fn();
  } catch (error) {
    if (error instanceof DnsnetError) return error;
    throw error;
  }
  throw new Error('expected a DnsnetError');
}

describe('allocateAddress', () => {
  it.each<[string, IpamConfig, string[], string]>([
    ['first after the gateway', NET, [], '10.213.0.2'],
    ['lowest free', NET, ['10.213.0.2', '10.213.0.3', '10.213.0.5'], '10.213.0.4'],
    ['a gateway not first leaves .1 usable', { subnet: '10.213.0.0/24', gateway: '10.213.0.254' }, [], '10.213.0.1'],
    ['skips the gateway in the middle', { subnet: '10.213.0.0/24', gateway: '10.213.0.3' }, ['10.213.0.1', '10.213.0.2'], '10.213.0.4'],
    ['ip-range start', { ...NET, subnet: '10.213.0.0/16', ipRange: '10.213.5.0/24' }, [], '10.213.5.0'],
    ['ip-range containing the network address', { ...NET, ipRange: '10.213.0.0/28' }, [], '10.213.0.2'],
    ['other-family and odd entries in used are ignored', NET, ['fd00::2', 'not-an-ip', '10.213.0.2'], '10.213.0.3'],
    ['IPv6', { subnet: 'fd00:213::/64', gateway: 'fd00:213::1' }, ['fd00:213::2', 'FD00:213:0::3'], 'fd00:213::4'],
    ['IPv6 last address is usable (no broadcast)', { subnet: 'fd00:213::/126', gateway: 'fd00:213::1' }, ['fd00:213::2'], 'fd00:213::3'],
  ])('%s', (_case, config, used, expected) => {
    expect(allocateAddress(config, used)).toBe(expected);
  });

  it('never hands out network, broadcast or gateway, and a /30 runs out after one', () => {
    const config: IpamConfig = { subnet: '10.213.0.0/30', gateway: '10.213.0.1' };
    const used = new Set<string>();
    const first = allocateAddress(config, used);
    expect(first).toBe('10.213.0.2');
    used.add(first);
    const error = errorOf(() => allocateAddress(config, used));
    expect(error.code).toBe('exhausted');
    expect(error.message).toBe('no free address left in subnet 10.213.0.0/30');
  });

  it('hands out every address of a /24 but the reserved three, then is exhausted', () => {
    const used = new Set<string>();
    for (let i = 0; i < 253; i++) used.add(allocateAddress(NET, used));
    expect(used.size).toBe(253);
    for (const r of ['10.213.0.0', '10.213.0.1', '10.213.0.255']) expect(used.has(r)).toBe(false);
    expect(errorOf(() => allocateAddress(NET, used)).code).toBe('exhausted');
  });

  it('reuses a released address', () => {
    const used = new Set(['10.213.0.2', '10.213.0.3', '10.213.0.4']);
    used.delete('10.213.0.3');
    expect(allocateAddress(NET, used)).toBe('10.213.0.3');
  });

  it('an exhausted ip-range says so', () => {
    const config: IpamConfig = { subnet: '10.213.0.0/24', gateway: '10.213.0.1', ipRange: '10.213.0.4/31' };
    const error = errorOf(() => allocateAddress(config, ['10.213.0.4', '10.213.0.5']));
    expect(error).toMatchObject({ code: 'exhausted', message: 'no free address left in ip-range 10.213.0.4/31' });
  });

  it('IPv6 in a /64 with many used addresses is a bounded scan', () => {
    const config: IpamConfig = { subnet: 'fd00:213::/64', gateway: 'fd00:213::1' };
    const used = Array.from({ length: 5000 }, (_, i) => `fd00:213::${(i + 2).toString(16)}`);
    expect(allocateAddress(config, used)).toBe(`fd00:213::${(5002).toString(16)}`);
  });

  it.each<[string, IpamConfig, string[], string, DnsnetError['code'] | 'ok', string]>([
    ['free --ip', NET, [], '10.213.0.77', 'ok', '10.213.0.77'],
    ['--ip normalised', { subnet: 'fd00:213::/64', gateway: 'fd00:213::1' }, [], 'FD00:213:0::AB', 'ok', 'fd00:213::ab'],
    ['--ip outside the subnet', NET, [], '10.213.1.5', 'invalid', 'address 10.213.1.5 is not in subnet 10.213.0.0/24'],
    ['--ip of the other family', NET, [], 'fd00::5', 'invalid', 'address fd00::5 is not in subnet 10.213.0.0/24'],
    ['--ip outside the range', { ...NET, ipRange: '10.213.0.128/25' }, [], '10.213.0.5', 'invalid', 'address 10.213.0.5 is not in ip-range 10.213.0.128/25'],
    ['--ip taken', NET, ['10.213.0.9'], '10.213.0.9', 'conflict', 'address 10.213.0.9 is already in use'],
    ['--ip = gateway', NET, [], '10.213.0.1', 'conflict', 'address 10.213.0.1 is already in use: it is the gateway of 10.213.0.0/24'],
    ['--ip = network address', NET, [], '10.213.0.0', 'invalid', 'address 10.213.0.0 cannot be used: it is the network address of 10.213.0.0/24'],
    ['--ip = broadcast', NET, [], '10.213.0.255', 'invalid', 'address 10.213.0.255 cannot be used: it is the broadcast address of 10.213.0.0/24'],
    ['--ip malformed', NET, [], '10.213.0.300', 'invalid', 'invalid address "10.213.0.300": octet 300 of 10.213.0.300 is out of range 0-255'],
  ])('%s', (_case, config, used, requested, code, expected) => {
    if (code === 'ok') {
      expect(allocateAddress(config, used, requested)).toBe(expected);
      return;
    }
    expect(errorOf(() => allocateAddress(config, used, requested))).toMatchObject({ code, message: expected });
  });
});

describe('macFor', () => {
  it.each([
    ['172.17.0.2', '02:42:ac:11:00:02'],
    ['10.213.0.255', '02:42:0a:d5:00:ff'],
  ])('%s -> %s', (ip, mac) => {
    expect(macFor(ip)).toBe(mac);
  });

  it('rejects IPv6', () => {
    expect(() => macFor('fd00::2')).toThrow(DnsnetError);
  });
});
