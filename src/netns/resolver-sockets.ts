// Opens the embedded resolver's UDP and TCP sockets on 127.0.0.11:53 inside a netns, owned by this (host-netns) process.
import { fork, type ChildProcess } from 'node:child_process';
import type dgram from 'node:dgram';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { DnsnetError } from '../errors.js';

const NSENTER = '/usr/bin/nsenter';
const HELPER = fileURLToPath(new URL('./socket-helper.js', import.meta.url));

export interface ResolverSockets {
  udp: dgram.Socket;
  tcp: net.Server;
}

/**
 * Fork socket-helper.js inside `netnsPath` (nsenter --net), receive its UDP socket and TCP server
 * bound to 127.0.0.11:53 over the IPC channel. `lo` must already be up in that netns.
 */
export function openResolverSockets(netnsPath: string, opts: { timeoutMs?: number; port?: number } = {}): Promise<ResolverSockets> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const doing = `open resolver sockets in ${netnsPath}`;
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = fork(HELPER, [], {
        execPath: NSENTER,
        execArgv: [`--net=${netnsPath}`, process.execPath],
        // json serialization carries handles fine; nothing else is sent. NODE_OPTIONS is dropped so a
        // test runner's loaders do not leak into the helper.
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...(opts.port ? { DNSNET_RESOLVER_PORT: String(opts.port) } : {}) },
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      });
    } catch (error) {
      reject(new DnsnetError('kernel', `${doing}: ${(error as Error).message}`, { cause: error }));
      return;
    }
    let udp: dgram.Socket | undefined;
    let tcp: net.Server | undefined;
    let settled = false;
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (stderr.length < 4096) stderr += chunk;
    });

    const finish = (error?: DnsnetError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        udp?.close();
        tcp?.close();
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        reject(error);
        return;
      }
      if (child.connected) child.disconnect();
      resolve({ udp: udp!, tcp: tcp! });
    };

    const timer = setTimeout(() => finish(new DnsnetError('kernel', `${doing}: helper did not answer within ${timeoutMs / 1000} s`)), timeoutMs);

    child.on('message', (msg: unknown, handle: unknown) => {
      const m = msg as { type?: string; message?: string };
      if (m?.type === 'udp' && handle) udp = handle as dgram.Socket;
      else if (m?.type === 'tcp' && handle) tcp = handle as net.Server;
      else if (m?.type === 'error') finish(new DnsnetError('kernel', `${doing}: ${m.message ?? 'helper failed'}`));
      if (udp && tcp) finish();
    });
    child.on('error', (error) => finish(new DnsnetError('kernel', `${doing}: ${error.message}`, { cause: error })));
    child.on('exit', (code, signal) => {
      const why = stderr.trim().split('\n').filter(Boolean).pop() ?? `helper exited (${signal ?? code})`;
      finish(new DnsnetError('kernel', `${doing}: ${why}`));
    });
  });
}
