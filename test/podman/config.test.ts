// netavark's aardvark-dns files, parsed: what netavark 1.4 writes, what newer netavark adds, and what is refused.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isNetworkFile, parseNetworkFile, readConfigDir } from '../../src/podman/config.js';

const ID1 = 'a'.repeat(64);
const ID2 = 'B'.repeat(64);

describe('parseNetworkFile', () => {
  it('reads the listen addresses, network servers and one line per container', () => {
    const n = parseNetworkFile('podman1', `10.89.0.1,fd00::1 192.0.2.53\n${ID1} 10.89.0.2 fd00::2 aone,A1,1a\n${ID2} 10.89.0.3  atwo 192.0.2.1,192.0.2.2\n`);
    expect(n).toEqual({
      name: 'podman1',
      internal: false,
      listenIps: ['10.89.0.1', 'fd00::1'],
      dns: ['192.0.2.53'],
      containers: [
        { id: ID1, ipv4: ['10.89.0.2'], ipv6: ['fd00::2'], names: ['aone', 'a1', '1a'], dns: [] },
        { id: ID2.toLowerCase(), ipv4: ['10.89.0.3'], ipv6: [], names: ['atwo'], dns: ['192.0.2.1', '192.0.2.2'] },
      ],
    });
  });

  it("takes newer netavark's %int suffix as an internal network of that name", () => {
    expect(parseNetworkFile('back%int', '10.89.1.1\n')).toMatchObject({ name: 'back', internal: true, containers: [] });
  });

  it('writes addresses as ip/ normalises them', () => {
    expect(parseNetworkFile('n', `fd00:0:0::0001\n${ID1}  FD00::0002 x\n`)).toMatchObject({ listenIps: ['fd00::1'], containers: [{ ipv6: ['fd00::2'] }] });
  });

  it.each([
    ['', /empty network file/],
    [' 192.0.2.1\n', /no listen addresses/],
    ['10.0.0.300\n', /line 1: listen address "10\.0\.0\.300" is no IPv4\/6 address/],
    ['10.0.0.1\nabc 10.0.0.2 fd00::2\n', /line 2: too few fields/],
    [`10.0.0.1\n${ID1} fd00::2  x\n`, /line 2: IPv4 address "fd00::2" is no IPv4 address/],
    [`10.0.0.1\n${ID1} 10.0.0.2 10.0.0.3 x\n`, /line 2: IPv6 address "10\.0\.0\.3" is no IPv6 address/],
    [`10.0.0.1\n${ID1} 10.0.0.2  ,\n`, /line 2: no names/],
    [`10.0.0.1\n${ID1} 10.0.0.2  x nonsense\n`, /line 2: DNS server "nonsense"/],
  ])('refuses %j', (text, why) => {
    expect(() => parseNetworkFile('net', text)).toThrow(why);
  });
});

describe('readConfigDir', () => {
  it('reads every network file, skips the pid file and dotfiles, and reports a bad file by name', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dnsnet-aardvark-'));
    try {
      fs.writeFileSync(path.join(dir, 'aardvark.pid'), '123');
      fs.writeFileSync(path.join(dir, '.tmp'), 'junk');
      fs.writeFileSync(path.join(dir, 'good'), `10.1.0.1\n${ID1} 10.1.0.2  one\n`);
      fs.writeFileSync(path.join(dir, 'bad'), 'not-an-ip\n');
      const r = await readConfigDir(dir);
      expect(r.networks.map((n) => n.name)).toEqual(['good']);
      expect(r.errors).toEqual([{ network: 'bad', message: expect.stringMatching(/^bad line 1: listen address "not-an-ip"/) }]);
      expect(isNetworkFile('aardvark.pid')).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says so when the directory is missing', async () => {
    await expect(readConfigDir('/nonexistent/aardvark-dns')).rejects.toThrow('config directory /nonexistent/aardvark-dns: does not exist');
  });
});
