import { describe, expect, it } from 'vitest';
import { renderHostname, renderHosts, type HostsInput } from '../../src/resolvconf/hosts.js';
import { parseAddHost } from '../../src/resolvconf/validate.js';

const base: HostsInput = { loIPv6: false, extraHosts: [], own: [{ ip: '172.18.0.2' }], hostname: '3f2a9c1b7e44', links: [] };

// Each case's expected file is fixtures/resolvconf/hosts-<name>.golden, checked by hand against SPEC 3.
const cases: Record<string, Partial<HostsInput>> = {
  plain: {},
  'lo-ipv6': { loIPv6: true },
  'no-address': { own: [] },
  'add-host': {
    extraHosts: [
      parseAddHost('db:10.0.0.5', undefined),
      parseAddHost('v6:2001:db8::5', undefined),
      parseAddHost('gw:host-gateway', '172.17.0.1'),
      parseAddHost('db:10.0.0.6', undefined),
    ],
  },
  'dotted-hostname': { hostname: 'web.corp.example' },
  'two-endpoints': { loIPv6: true, own: [{ ip: '172.18.0.2' }, { ip: 'fd00:18::2' }, { ip: '172.19.0.7' }], hostname: 'web' },
  links: {
    own: [{ ip: '172.17.0.3' }],
    hostname: 'web',
    links: [
      { ip: '172.17.0.2', alias: 'db', hostname: '8e1d2c3b4a59', name: 'postgres' }, // --link postgres:db
      { ip: '172.17.0.4', alias: 'cache', hostname: 'cache', name: 'cache' }, // --link cache
      { ip: '172.17.0.5', alias: 'q', hostname: 'mq.example', name: 'rabbit' },
    ],
  },
  everything: {
    loIPv6: true,
    extraHosts: [parseAddHost('gw:host-gateway', '172.17.0.1')],
    own: [{ ip: '172.17.0.3' }],
    hostname: 'app.local',
    links: [{ ip: '172.17.0.2', alias: 'db', hostname: 'db', name: 'postgres' }],
  },
};

describe('renderHosts', () => {
  it.each(Object.entries(cases))('%s', async (name, c) => {
    const text = renderHosts({ ...base, ...c });
    for (const line of text.trimEnd().split('\n')) expect(line).toMatch(/^[0-9a-f.:]+\t\S+( \S+)*$/);
    await expect(text).toMatchFileSnapshot(`../../fixtures/resolvconf/hosts-${name}.golden`);
  });
});

describe('renderHostname', () => {
  it.each([
    ['3f2a9c1b7e44', '3f2a9c1b7e44\n'],
    ['web.corp.example', 'web.corp.example\n'],
  ])('%s', (h, want) => {
    expect(renderHostname(h)).toBe(want);
  });
});
