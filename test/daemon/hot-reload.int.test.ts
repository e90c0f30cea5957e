// Hot reload: running containers follow the host resolv.conf (in-place write, rename, symlink
// re-point), with two fake upstreams on loopback that answer the same name differently.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDnsnetEnv, leftovers, LOCAL_NAMESERVER, type DnsnetEnv } from '../helpers/dnsnet-env.js';
import { FAKE_DNS, randomLoopback, startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';

const NAME = 'switch.example.test';
let e: DnsnetEnv;
let a: FakeUpstream;
let b: FakeUpstream;

beforeEach(async () => {
  a = await startFakeUpstream(randomLoopback(), { [NAME]: '192.0.2.1' });
  b = await startFakeUpstream(randomLoopback(), { [NAME]: '192.0.2.2' });
});

afterEach(async () => {
  await e.teardown();
  await Promise.all([a.close(), b.close()]);
  expect(await leftovers(e)).toEqual([]);
});

function writeInPlace(file: string, text: string): void {
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, text, 0);
  fs.ftruncateSync(fd, Buffer.byteLength(text));
  fs.closeSync(fd);
}

function replaceByRename(file: string, text: string): void {
  const tmp = `${file}.new`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

async function answer(ctr: string): Promise<string> {
  return String((await e.cli(['exec', ctr, 'dig', '+short', '+time=1', '+tries=1', '@127.0.0.11', NAME])).stdout).trim();
}

/** Poll until the container's answer is `want`, for at most 3 s; returns the seconds it took. */
async function until(ctr: string, want: string): Promise<number> {
  const start = Date.now();
  let got = '';
  while (Date.now() - start < 3000) {
    got = await answer(ctr);
    if (got === want) return (Date.now() - start) / 1000;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${ctr} still answers "${got}", expected ${want}`);
}

async function fileOf(ctr: string): Promise<string> {
  return e.ok(['exec', ctr, 'cat', '/etc/resolv.conf']);
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 60; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not within 3 s: ${what}`);
}

describe('hot reload of the host resolv.conf', () => {
  it('follows an in-place write and a rename, and back; search domains reach the file', async () => {
    e = await createDnsnetEnv(`nameserver ${a.ip}\n`);
    await e.ok(['network', 'create', 'app']);
    await e.ok(['run', '-d', '--name', 'client', '--network', 'app', 'sleep', 'infinity']);
    expect(await answer('client')).toBe('192.0.2.1');

    writeInPlace(e.hostResolvConf, `nameserver ${b.ip}\nsearch corp.example\n`);
    await until('client', '192.0.2.2');
    await eventually(async () => (await fileOf('client')).includes('search corp.example'), 'search domain in the container file');

    replaceByRename(e.hostResolvConf, `nameserver ${a.ip}\n`);
    await until('client', '192.0.2.1');
    await eventually(async () => !(await fileOf('client')).includes('search corp.example'), 'search domain gone again');
  });

  // Ubuntu's default: the host file names only systemd-resolved's stub, whose real upstreams are in another
  // file; the default network's copy comes from that one, so it must be followed too.
  it("follows systemd-resolved's upstream file when the host file only names 127.0.0.53", async () => {
    e = await createDnsnetEnv('nameserver 127.0.0.53\n');
    const systemd = e.env.DNSNET_SYSTEMD_RESOLV_CONF!;
    fs.writeFileSync(systemd, 'nameserver 10.7.7.7\nsearch one.example\n');
    await e.ok(['run', '-d', '--name', 'legacy', 'sleep', 'infinity']); // default network: nothing resolved from it
    expect(await fileOf('legacy')).toMatch(/^nameserver 10\.7\.7\.7$/m);
    writeInPlace(systemd, 'nameserver 10.8.8.8\nsearch two.example\n');
    await eventually(async () => /^nameserver 10\.8\.8\.8$/m.test(await fileOf('legacy')), 'the new systemd-resolved upstream in the container file');
    const text = await fileOf('legacy');
    expect(text).not.toMatch(/10\.7\.7\.7/);
    expect(text).toMatch(/^search two\.example$/m);
    replaceByRename(systemd, 'nameserver 10.9.9.9\n'); // as systemd-resolved writes it
    await eventually(async () => /^nameserver 10\.9\.9\.9$/m.test(await fileOf('legacy')), 'the file replaced by rename');
  });

  it('follows a re-pointed symlink (systemd-resolved layout), and back', async () => {
    e = await createDnsnetEnv(`nameserver ${a.ip}\n`);
    const dirA = path.join(e.dir, 'resolve-a');
    const dirB = path.join(e.dir, 'resolve-b');
    fs.mkdirSync(dirA);
    fs.mkdirSync(dirB);
    fs.writeFileSync(path.join(dirA, 'stub-resolv.conf'), `nameserver ${a.ip}\n`);
    fs.writeFileSync(path.join(dirB, 'resolv.conf'), `nameserver ${b.ip}\n`);
    fs.rmSync(e.hostResolvConf);
    fs.symlinkSync(path.join(dirA, 'stub-resolv.conf'), e.hostResolvConf);
    await e.ok(['network', 'create', 'app']);
    await e.ok(['run', '-d', '--name', 'client', '--network', 'app', 'sleep', 'infinity']);
    expect(await answer('client')).toBe('192.0.2.1');

    const repoint = (target: string) => {
      const tmp = `${e.hostResolvConf}.lnk`;
      fs.symlinkSync(target, tmp);
      fs.renameSync(tmp, e.hostResolvConf);
    };
    repoint(path.join(dirB, 'resolv.conf'));
    await until('client', '192.0.2.2');
    repoint(path.join(dirA, 'stub-resolv.conf'));
    await until('client', '192.0.2.1');
  });

  it('rewrites default-network files filtered, keeps --dns and a file the user edited', async () => {
    e = await createDnsnetEnv(`nameserver ${a.ip}\nnameserver ${LOCAL_NAMESERVER}\n`);
    await e.ok(['network', 'create', 'app']);
    await e.ok(['run', '-d', '--name', 'legacy', 'sleep', 'infinity']);
    // --dns is dialled from the container's own netns: the pinned one runs its server on its own loopback.
    await e.ok(['run', '-d', '--name', 'pinned', '--network', 'app', '--dns', '127.0.0.61', '--', process.execPath, FAKE_DNS, '127.0.0.61', '53', JSON.stringify({ [NAME]: '192.0.2.1' })]);
    await eventually(async () => (await e.ok(['logs', 'pinned'])).includes('ready'), 'the pinned container\'s DNS server up');
    await e.ok(['run', '-d', '--name', 'edited', '--network', 'app', 'sleep', 'infinity']);
    expect(await fileOf('legacy')).toMatch(new RegExp(`^nameserver ${LOCAL_NAMESERVER.replace(/\./g, '\\.')}$`, 'm'));
    await e.ok(['exec', 'edited', 'sh', '-c', 'echo "# my own line" >> /etc/resolv.conf']);

    // Only loopback servers left: the default network's copy falls back to 8.8.8.8 / 8.8.4.4
    // (written into the file only: nothing in this test queries them).
    writeInPlace(e.hostResolvConf, `nameserver ${b.ip}\nsearch moved.example\n`);
    await eventually(async () => (await fileOf('legacy')).includes('search moved.example'), 'legacy file rewritten');
    const legacy = await fileOf('legacy');
    expect(legacy).toMatch(/^nameserver 8\.8\.8\.8$/m);
    expect(legacy).toMatch(/^nameserver 8\.8\.4\.4$/m);
    expect(legacy).not.toMatch(/^nameserver 127\./m);

    expect(await answer('pinned')).toBe('192.0.2.1');
    const edited = await fileOf('edited');
    expect(edited).toContain('# my own line');
    expect(edited).not.toContain('moved.example');
    const [info] = await e.json<{ Dnsnet: { ResolvConfEdited: boolean } }[]>(['inspect', 'edited']);
    expect(info!.Dnsnet.ResolvConfEdited).toBe(true);
    // Its upstreams still follow the host: only the file is the user's.
    await until('edited', '192.0.2.2');
  });
});
