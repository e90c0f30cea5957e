// A real etcd cluster for a test: Debian 12's etcd 3.4 binary (never its packaged service), N members on
// loopback addresses of their own (127.X.Y.1..N, client port 2379, peer port 2380), data on a tmpfs of the
// test (each member's WAL preallocates ~64 MB), started and removed here. A member can be stopped and
// started again (same data) to test failover.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll } from 'vitest';
import { Etcd } from '../../src/cluster/etcd.js';

export const ETCD = '/usr/bin/etcd';
export const HAVE_ETCD = fs.existsSync(ETCD);

export interface EtcdCluster {
  endpoints: string[];
  ips: string[];
  stop(i: number): Promise<void>;
  start(i: number): Promise<void>;
  teardown(): Promise<void>;
}

/** Where the members run: by default loopback addresses of ours in the test's netns; or given addresses in a netns of the test's. */
export interface EtcdPlacement {
  /** A netns (by name) the members run in, and that the health checks are made from. */
  netns?: string;
  /** The members' addresses (one per member), on a link of that netns. */
  ips?: string[];
}

function healthy(ip: string, netns?: string): Promise<boolean> {
  if (netns) {
    const get = `require('http').get({host:'${ip}',port:2379,path:'/health',timeout:500},(r)=>{let t='';r.on('data',(c)=>t+=c);r.on('end',()=>process.stdout.write(t))}).on('error',()=>{}).on('timeout',function(){this.destroy()})`;
    return execa('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, '-e', get], { reject: false }).then((r) => /"health":\s*"true"/.test(String(r.stdout)));
  }
  return new Promise((resolve) => {
    const req = http.get({ host: ip, port: 2379, path: '/health', timeout: 500 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(/"health":\s*"true"/.test(text)));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

export async function createEtcdCluster(size = 3, where: EtcdPlacement = {}): Promise<EtcdCluster> {
  const tag = crypto.randomBytes(3).toString('hex');
  const base = `127.${crypto.randomInt(100, 250)}.${crypto.randomInt(1, 250)}`;
  const ips = where.ips ?? Array.from({ length: size }, (_, i) => `${base}.${i + 1}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `dnsnet-etcd-${tag}-`));
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=1g,mode=700', `dnt-etcd-${tag}`, dir]);
  const cluster = ips.map((ip, i) => `m${i + 1}=http://${ip}:2380`).join(',');
  const procs: (ChildProcess | undefined)[] = [];
  const started = new Set<number>();
  const launch = (i: number): void => {
    const ip = ips[i]!;
    const args = [
      `--name=m${i + 1}`,
      `--data-dir=${dir}/m${i + 1}`,
      `--listen-client-urls=http://${ip}:2379`,
      `--advertise-client-urls=http://${ip}:2379`,
      `--listen-peer-urls=http://${ip}:2380`,
      `--initial-advertise-peer-urls=http://${ip}:2380`,
      `--initial-cluster=${cluster}`,
      `--initial-cluster-token=dnt-${tag}`,
      `--initial-cluster-state=${started.has(i) ? 'existing' : 'new'}`,
      '--heartbeat-interval=50',
      '--election-timeout=500',
      '--log-level=error',
    ];
    started.add(i);
    const log = fs.openSync(path.join(dir, `m${i + 1}.log`), 'a');
    // nsenter without --pid execs etcd itself: the child is the member (killed below).
    const [file, argv] = where.netns ? ['nsenter', [`--net=/run/netns/${where.netns}`, '--', ETCD, ...args]] : [ETCD, args];
    procs[i] = spawn(file, argv, { stdio: ['ignore', log, log], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ETCD_UNSUPPORTED_ARCH: process.arch === 'x64' ? '' : process.arch } });
    fs.closeSync(log);
  };
  const waitHealthy = async (list: number[]): Promise<void> => {
    for (let t0 = Date.now(); Date.now() - t0 < 20_000; ) {
      if ((await Promise.all(list.map((i) => healthy(ips[i]!, where.netns)))).every(Boolean)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`etcd members ${list.map((i) => ips[i]).join(', ')} not healthy after 20 s: ${list.map((i) => fs.readFileSync(path.join(dir, `m${i + 1}.log`), 'utf8').slice(-300)).join(' | ')}`);
  };
  const stop = async (i: number): Promise<void> => {
    const p = procs[i];
    procs[i] = undefined;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  };
  const teardown = async (): Promise<void> => {
    for (let i = 0; i < size; i++) await stop(i);
    await execa('umount', [dir], { reject: false });
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < size; i++) launch(i);
    await waitHealthy(ips.map((_, i) => i));
  } catch (error) {
    await teardown();
    throw error;
  }
  return {
    endpoints: ips.map((ip) => `http://${ip}:2379`),
    ips,
    stop,
    async start(i) {
      launch(i);
      await waitHealthy([i]);
    },
    teardown,
  };
}

/**
 * One 3-member cluster for the test file, and three "hosts": a client each, asking its own member first
 * (then the others). Skipped (nothing started) where etcd is not installed.
 */
export function etcdClusterPerFile(): { readonly cluster: EtcdCluster; readonly hosts: Etcd[] } {
  let cluster: EtcdCluster | undefined;
  const hosts: Etcd[] = [];
  beforeAll(async () => {
    if (!HAVE_ETCD) return;
    cluster = await createEtcdCluster(3);
    hosts.push(...[0, 1, 2].map((i) => new Etcd({ endpoints: [cluster!.endpoints[i]!, ...cluster!.endpoints] })));
  }, 60_000);
  afterAll(async () => {
    for (const h of hosts) h.close();
    await cluster?.teardown();
  });
  return {
    get cluster() {
      return cluster!;
    },
    hosts,
  };
}
