// A fake upstream DNS server on a loopback address (UDP and TCP), answering from a fixed table; tests never leave the machine.
// The server itself is fake-dns.mjs; this file gives it types.
import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
// @ts-expect-error plain JS, so that it also runs as a program (`node fake-dns.mjs`) inside namespaces
import { startFakeDns } from './fake-dns.mjs';

/**
 * A name's answer: A address(es), an rcode, DROP (no reply), `{ txtBytes }` (TXT records making a reply of
 * about that many bytes, whatever the query's EDNS size: an upstream that fills a big buffer), or
 * `{ delayMs, then }` (that answer, late; with `once`, only the first query for the name and type gets it, later
 * ones nothing).
 */
export type FakeAnswer = string | string[] | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' | 'DROP' | { txtBytes: number } | { delayMs: number; then: FakeAnswer; once?: boolean };

export interface FakeUpstream {
  ip: string;
  port: number;
  /** `ip` when port is 53, else `ip:port`: what to give the resolver. */
  address: string;
  readonly queries: number;
  readonly udpQueries: number;
  readonly tcpQueries: number;
  /** Question names seen, in order, as sent (case kept). */
  readonly names: string[];
  close(): Promise<void>;
}

/** A random 127.53.X.Y address, so parallel tests do not collide. */
export function randomLoopback(): string {
  return `127.53.${randomInt(1, 255)}.${randomInt(1, 255)}`;
}

/**
 * Serve `answers` (lower-case name -> FakeAnswer) on ip:53 over UDP and TCP.
 * Names not in the table get NXDOMAIN. Only A (and TXT) records are produced; other types get NODATA.
 */
export async function startFakeUpstream(ip: string, answers: Record<string, FakeAnswer>, opts: { port?: number } = {}): Promise<FakeUpstream> {
  return (await startFakeDns(ip, answers, opts)) as FakeUpstream;
}

/** The program that serves the same inside a namespace or container: `node FAKE_DNS IP PORT JSON`, prints "ready". */
export const FAKE_DNS = fileURLToPath(new URL('./fake-dns.mjs', import.meta.url));
