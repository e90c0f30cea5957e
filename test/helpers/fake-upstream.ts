// A fake upstream DNS server on a loopback address (UDP and TCP), answering from a fixed table; tests never leave the machine.
// The server itself is src/demo/fake-dns.ts, which the demo uses too (and, built, runs as a program in namespaces).
import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startFakeDns, type FakeAnswer, type FakeDns } from '../../src/demo/fake-dns.js';

export type { FakeAnswer };
export type FakeUpstream = FakeDns;

/** A random 127.53.X.Y address, so parallel tests do not collide. */
export function randomLoopback(): string {
  return `127.53.${randomInt(1, 255)}.${randomInt(1, 255)}`;
}

/**
 * Serve `answers` (lower-case name -> FakeAnswer) on ip:53 over UDP and TCP.
 * Names not in the table get NXDOMAIN. Only A (and TXT) records are produced; other types get NODATA.
 */
export function startFakeUpstream(ip: string, answers: Record<string, FakeAnswer>, opts: { port?: number } = {}): Promise<FakeUpstream> {
  return startFakeDns(ip, answers, opts);
}

/** The same server as a program, to run inside a namespace or container: `node FAKE_DNS IP PORT JSON`, prints "ready". */
export const FAKE_DNS = fileURLToPath(new URL('../../dist/demo/fake-dns.js', import.meta.url));
