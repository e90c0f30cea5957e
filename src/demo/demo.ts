// `dnsnet demo`: the whole mission on this machine, on its own roots, cleaned up afterwards (Ctrl-C too).
// Every upstream it uses is a fake DNS server on loopback that it runs itself: nothing leaves the host.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tableName } from '../state/kernel-names.js';
import { BUSYBOX, buildDemoImage } from './image.js';
import { startFakeDns } from './fake-dns.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const LOOKUP = 'www.upstream.test';

interface Upstream {
  close(): unknown;
}

export async function runDemo(): Promise<void> {
  const tag = crypto.randomBytes(3).toString('hex');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dnsnet-demo-'));
  const hostResolv = path.join(dir, 'host-resolv.conf');
  const stateRoot = path.join(dir, 'state');
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    DNSNET_ROOT: stateRoot,
    DNSNET_RUN: path.join(dir, 'run'),
    DNSNET_HOST_RESOLV_CONF: hostResolv,
    DNSNET_SYSTEMD_RESOLV_CONF: path.join(dir, 'no-systemd'),
    DNSNET_DEFAULT_BRIDGE: `dndemo${tag}`,
  };
  const net = `demo-${tag}`;
  const a = `127.53.${crypto.randomInt(1, 250)}.1`;
  const b = a.replace(/\.1$/, '.2');
  const upstreams: Upstream[] = [];
  // A machine on the LAN, played by a netns with a veth to this host (10.213.N.1 here, .2 there).
  const octet = crypto.randomInt(120, 220);
  const lan = { ns: `dndemo${tag}lan`, veth: `dndemo${tag}l`, hostIp: `10.213.${octet}.1`, ip: `10.213.${octet}.2` };
  const port = crypto.randomInt(30000, 50000);
  let cleaning: Promise<void> | undefined;
  let interrupted = false;
  const inflight = new Map<import('node:child_process').ChildProcess, Promise<void>>();

  const say = (text: string, always = false) => {
    if (!interrupted || always) process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
  };
  // After Ctrl-C the demo's own steps stop (they resolve as failed); only the cleanup runs commands.
  const dnsnet = (args: string[], show = true, forCleanup = false): Promise<{ code: number; out: string }> =>
    new Promise((resolve) => {
      if (interrupted && !forCleanup) return resolve({ code: 130, out: '' });
      if (show) process.stdout.write(`$ dnsnet ${args.join(' ')}\n`);
      const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const done = new Promise<void>((r) => child.on('close', () => r()));
      inflight.set(child, done);
      void done.then(() => inflight.delete(child));
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (show) process.stdout.write(d);
      });
      child.stderr.on('data', (d: Buffer) => {
        if (show) process.stdout.write(d);
      });
      child.on('close', (code, sig) => {
        if (process.env.DNSNET_DEBUG === '1') process.stdout.write(`  [exit ${code ?? sig}]\n`);
        resolve({ code: code ?? 1, out });
      });
    });

  const cleanup = () =>
    (cleaning ??= (async () => {
      say('cleaning up', true);
      // A CLI still at work (a foreground run) would otherwise finish after the daemon is gone
      // and start a new one: end those first (the CLI passes SIGTERM on to its container).
      for (const child of inflight.keys()) child.kill('SIGTERM');
      await Promise.all(inflight.values());
      const ps = await dnsnet(['ps', '-a', '-q'], process.env.DNSNET_DEBUG === '1', true);
      const ids = ps.out.split('\n').filter(Boolean);
      if (ids.length) await dnsnet(['rm', '-f', ...ids], process.env.DNSNET_DEBUG === '1', true);
      await dnsnet(['network', 'prune'], process.env.DNSNET_DEBUG === '1', true);
      for (const pid of processesOf(stateRoot)) {
        try {
          process.kill(pid, 'SIGTERM');
          for (let i = 0; i < 100 && fs.existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 50));
        } catch {
          // already gone
        }
      }
      await run('ip', ['netns', 'delete', lan.ns]);
      await run('ip', ['link', 'delete', lan.veth]);
      await run('ip', ['link', 'delete', env.DNSNET_DEFAULT_BRIDGE!]);
      await run('nft', ['delete', 'table', 'inet', tableName(stateRoot)]);
      for (const u of upstreams) void u.close();
      fs.rmSync(dir, { recursive: true, force: true });
      process.stdout.write('removed the demo containers, networks, bridges, nftables table and files\n');
    })());
  const onSignal = () => {
    interrupted = true;
    void cleanup().then(() => {
      process.stdout.write('demo interrupted\n');
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let ok = true;
  const check = (cond: boolean, what: string) => {
    if (interrupted) return;
    process.stdout.write(cond ? `   ok: ${what}\n` : `   FAILED: ${what}\n`);
    ok &&= cond;
  };
  try {
    // The tests' fake upstream (src/demo/fake-dns.ts), on two loopback addresses of the host.
    upstreams.push(await startFakeDns(a, { [LOOKUP]: '192.0.2.10' }), await startFakeDns(b, { [LOOKUP]: '192.0.2.20' }));
    fs.writeFileSync(hostResolv, `# demo host resolv.conf: a fake upstream on loopback\nnameserver ${a}\n`);

    say('a user-defined network and two containers on it');
    check((await dnsnet(['network', 'create', net])).code === 0, `network ${net} created`);
    check((await dnsnet(['run', '-d', '--name', 'tomcat81', '--network', net, '--', 'sleep', 'infinity'])).code === 0, 'tomcat81 running');
    const ping = await dnsnet(['run', '--rm', '--name', 'tomcat82', '--network', net, '--', 'ping', '-c1', '-W2', 'tomcat81']);
    check(ping.code === 0, 'tomcat82 pings tomcat81 by name');

    say('on the default network names do not resolve (as in Docker)');
    // The default network has no embedded resolver: its containers ask the host's nameservers
    // directly, which here would be the 8.8.8.8 fallback. The demo sends nothing off the machine,
    // so it points them at the default bridge's own address (nothing listens there).
    const bridge = JSON.parse((await dnsnet(['network', 'inspect', 'bridge'], false)).out) as { IPAM: { Config: { Gateway: string }[] } }[];
    const localDns = bridge[0]?.IPAM.Config[0]?.Gateway ?? '127.0.0.1';
    await dnsnet(['run', '-d', '--name', 'legacy81', '--dns', localDns, '--', 'sleep', 'infinity']);
    const legacy = await dnsnet(['run', '--rm', '--name', 'legacy82', '--dns', localDns, '--', 'ping', '-c1', '-W1', 'legacy81']);
    check(legacy.code !== 0, 'legacy82 cannot resolve legacy81');

    say("tomcat81's generated files");
    await dnsnet(['exec', 'tomcat81', 'cat', '/etc/resolv.conf']);
    await dnsnet(['exec', 'tomcat81', 'cat', '/etc/hosts']);

    say(`forwarding: ${LOOKUP} through the host's upstream ${a}`);
    const before = await dnsnet(['exec', 'tomcat81', 'getent', 'hosts', LOOKUP]);
    check(before.out.includes('192.0.2.10'), `answered by ${a} (192.0.2.10)`);

    say(`the host's resolv.conf changes while tomcat81 runs: upstream ${b}, search demo.internal`);
    const fd = fs.openSync(hostResolv, 'r+');
    const text = `# demo host resolv.conf, edited\nnameserver ${b}\nsearch demo.internal\n`;
    fs.writeSync(fd, text, 0);
    fs.ftruncateSync(fd, Buffer.byteLength(text));
    fs.closeSync(fd);
    process.stdout.write(text);
    let after = { code: 1, out: '' };
    for (let i = 0; i < 20 && !after.out.includes('192.0.2.20'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await dnsnet(['exec', 'tomcat81', 'getent', 'hosts', LOOKUP], false);
    }
    process.stdout.write(`$ dnsnet exec tomcat81 getent hosts ${LOOKUP}\n${after.out}`);
    check(after.out.includes('192.0.2.20'), `now answered by ${b} (192.0.2.20), without restarting the container`);
    const resolv = await dnsnet(['exec', 'tomcat81', 'cat', '/etc/resolv.conf']);
    check(resolv.out.includes('search demo.internal'), "the container's resolv.conf followed the host");

    say(`a published port, reached from another machine on the LAN (a netns with a veth to this host, ${lan.ip})`);
    for (const args of [['netns', 'add', lan.ns], ['link', 'add', lan.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', lan.ns], ['addr', 'add', `${lan.hostIp}/24`, 'dev', lan.veth], ['link', 'set', lan.veth, 'up'], ['-n', lan.ns, 'addr', 'add', `${lan.ip}/24`, 'dev', 'eth0'], ['-n', lan.ns, 'link', 'set', 'eth0', 'up']]) {
      await run('ip', args);
    }
    const server = "require('net').createServer((s) => s.end('hello from tomcat83 to ' + s.remoteAddress.replace('::ffff:', '') + '\\n')).listen(8080)";
    check((await dnsnet(['run', '-d', '--name', 'tomcat83', '--network', net, '-p', `${port}:8080`, '--', process.execPath, '-e', server])).code === 0, `tomcat83 serves on 8080, published on the host's ${port}`);
    await dnsnet(['port', 'tomcat83']);
    const client = `require('net').connect(${port}, process.argv[1]).on('data', (d) => process.stdout.write(d)).on('error', () => process.exit(1))`;
    let fromLan = { code: 1, out: '' };
    for (let i = 0; i < 30 && !fromLan.out.includes('hello'); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      fromLan = await capture('ip', ['netns', 'exec', lan.ns, process.execPath, '-e', client, lan.hostIp]);
    }
    process.stdout.write(`lan$ connect ${lan.hostIp}:${port}\n${fromLan.out}`);
    check(fromLan.out.includes(`hello from tomcat83 to ${lan.ip}`), 'reached from the LAN through the kernel (DNAT), the client keeping its own address');
    const fromHost = await capture(process.execPath, ['-e', client, '127.0.0.1']);
    process.stdout.write(`host$ connect 127.0.0.1:${port}\n${fromHost.out}`);
    check(fromHost.out.includes('hello from tomcat83'), "reached from this host's 127.0.0.1");

    say('an image container: an image made from busybox-static, loaded from a tar, run on the network, reached by name');
    if (!fs.existsSync(BUSYBOX)) {
      process.stdout.write(`   skipped: ${BUSYBOX} is missing (apt-get install busybox-static)\n`);
    } else {
      const image = `demo/busybox:${tag}`;
      const tar = await buildDemoImage(dir, image);
      check((await dnsnet(['load', '-i', tar])).code === 0, `${image} loaded`);
      await dnsnet(['images']);
      check((await dnsnet(['run', '-d', '--name', 'tomcat84', '--network', net, image])).code === 0, 'tomcat84 runs the image (its Cmd: busybox httpd)');
      let page = { code: 1, out: '' };
      for (let i = 0; i < 30 && !page.out.includes('hello'); i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 100));
        page = await dnsnet(['run', '--rm', '--network', net, image, 'wget', '-q', '-O-', 'http://tomcat84/'], i === 0);
      }
      if (!page.out.includes('hello')) process.stdout.write(page.out);
      check(page.out.includes('hello from an image container'), "another image container fetched tomcat84's page by name (busybox's resolver)");
    }
  } catch (error) {
    ok = false;
    process.stdout.write(`demo failed: ${(error as Error).message}\n`);
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (interrupted) return; // the signal handler reports and exits
  say(ok ? 'demo passed' : 'demo FAILED');
  if (!ok) process.exitCode = 1;
}

/**
 * Pids of this state root's daemon and its helpers: every process whose environment names the root
 * (the daemon's title can be cut short, its environment cannot).
 */
function processesOf(stateRoot: string): number[] {
  const pids: number[] = [];
  const mark = `DNSNET_ROOT=${stateRoot}`;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(mark)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.on('close', () => resolve());
    child.on('error', () => resolve());
  });
}

/** Run a command to completion and keep its output (stdout only). */
function capture(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, out });
    });
    child.on('error', () => resolve({ code: 1, out }));
  });
}
