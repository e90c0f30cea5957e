// The API client against a fake daemon on a unix socket: JSON both ways, ApiError -> DnsnetError, start on demand.
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { apiError, Client, clientPathsFromEnv, parseResponse } from '../../src/cli/client.js';
import { DAEMON_NODE_FLAGS, startDaemon } from '../../src/cli/daemon-start.js';
import { DnsnetError } from '../../src/errors.js';
import { json, startFakeDaemon, tempRunDir, type FakeDaemon } from './fake-daemon.js';

let fake: FakeDaemon | undefined;
const cleanups: (() => void)[] = [];

afterEach(async () => {
  await fake?.close();
  fake = undefined;
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe('paths', () => {
  it('take the run dir from DNSNET_RUN, defaulting to /run/dnsnet', () => {
    expect(clientPathsFromEnv({})).toEqual({ runDir: '/run/dnsnet', socket: '/run/dnsnet/dnsnet.sock', daemonLog: '/run/dnsnet/daemon.log' });
    expect(clientPathsFromEnv({ DNSNET_RUN: '/tmp/r' }).socket).toBe('/tmp/r/dnsnet.sock');
  });
});

describe('requests', () => {
  it('send JSON bodies and parse JSON answers', async () => {
    fake = await startFakeDaemon({ 'POST /networks': json(201, { Id: 'f'.repeat(64), Name: 'app' }) });
    const client = new Client({ paths: fake.paths });
    expect(await client.post('/networks', { name: 'app' })).toEqual({ Id: 'f'.repeat(64), Name: 'app' });
    expect(fake.seen).toEqual([{ method: 'POST', url: '/networks', body: { name: 'app' } }]);
  });

  it('turn an ApiError into the DnsnetError the daemon threw', async () => {
    fake = await startFakeDaemon({ 'DELETE /networks/app': json(409, { code: 'conflict', message: 'remove network app: in use by web' }) });
    const client = new Client({ paths: fake.paths });
    const error = await client.delete('/networks/app').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DnsnetError);
    expect(error).toMatchObject({ code: 'conflict', message: 'remove network app: in use by web' });
  });

  it('stream a body to the end', async () => {
    fake = await startFakeDaemon({
      'GET /containers/web/logs?follow=1': (_body, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('one\n');
        setTimeout(() => res.end('two\n'), 20);
      },
    });
    const chunks: string[] = [];
    const out = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c.toString()), cb()) });
    await new Client({ paths: fake.paths }).stream('/containers/web/logs?follow=1', out);
    expect(chunks.join('')).toBe('one\ntwo\n');
  });

  it('say where it looked when no daemon answers and none may be started', async () => {
    const runDir = tempRunDir();
    cleanups.push(() => fs.rmSync(runDir, { recursive: true, force: true }));
    const client = new Client({ paths: clientPathsFromEnv({ DNSNET_RUN: runDir }) });
    await expect(client.get('/networks')).rejects.toThrow(`connect to daemon at ${runDir}/dnsnet.sock: connect ENOENT`);
  });
});

describe('apiError', () => {
  it.each([
    [404, '{"code":"not-found","message":"no such network: x"}', 'not-found', 'no such network: x'],
    [500, '{"code":"weird","message":"boom"}', 'internal', 'boom'],
    [502, 'Bad Gateway', 'internal', 'GET /x: daemon answered HTTP 502: Bad Gateway'],
    [500, '', 'internal', 'GET /x: daemon answered HTTP 500'],
  ])('%d %s', (status, text, code, message) => {
    expect(apiError('GET', '/x', status, text)).toMatchObject({ code, message });
  });
});

describe('starting the daemon on demand', () => {
  // A stand-in daemon: serves /_ping on the socket next to it, as `<script> daemon` would.
  const fakeDaemonScript = `
import http from 'node:http';
import path from 'node:path';
const sock = path.join(path.dirname(process.argv[1]), 'dnsnet.sock');
if (process.argv[2] !== 'daemon') process.exit(2);
setTimeout(() => process.exit(0), 30000);
http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(req.url === '/_ping' ? { pid: process.pid } : { url: req.url }));
}).listen(sock, () => console.log('[daemon] serving ' + sock));
`;

  function runDirWith(script: string) {
    const runDir = tempRunDir();
    fs.writeFileSync(path.join(runDir, 'fake-daemon.mjs'), script);
    cleanups.push(() => fs.rmSync(runDir, { recursive: true, force: true }));
    return { paths: clientPathsFromEnv({ DNSNET_RUN: runDir }), script: path.join(runDir, 'fake-daemon.mjs') };
  }

  it('spawns `<entry> daemon` when the socket is absent, waits for /_ping, then sends the request', async () => {
    const { paths, script } = runDirWith(fakeDaemonScript);
    const client = new Client({ paths, daemon: { script, execArgv: [] } });
    const { pid } = await client.get<{ pid: number }>('/_ping');
    cleanups.unshift(() => process.kill(pid, 'SIGTERM'));
    expect(await client.get('/networks')).toEqual({ url: '/networks' });
    expect(fs.readFileSync(paths.daemonLog, 'utf8')).toContain(`[daemon] serving ${paths.socket}`);
  });

  it('fails with one clear line, quoting the log, when the daemon dies at once', async () => {
    const { paths, script } = runDirWith(`console.error('[daemon] another daemon holds the lock'); process.exit(125);`);
    const timing = { pollMs: 10, waitMs: 2_000, graceAfterExitMs: 200 };
    const started = Date.now();
    const error = await startDaemon(paths, { script, execArgv: [] }, async () => false, timing).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(error).toBeInstanceOf(DnsnetError);
    expect((error as Error).message).toBe(
      `start daemon: no answer on ${paths.socket} after 0 s; it exited with code 125: [daemon] another daemon holds the lock (see ${paths.daemonLog})`,
    );
  });

  it("runs the daemon under DAEMON_NODE_FLAGS, then the caller's own flags (the last of a repeated flag wins)", async () => {
    const { paths, script } = runDirWith(`console.error('[daemon] execArgv ' + JSON.stringify(process.execArgv)); process.exit(125);`);
    const timing = { pollMs: 10, waitMs: 2_000, graceAfterExitMs: 200 };
    await startDaemon(paths, { script, execArgv: ['--max-semi-space-size=8'] }, async () => false, timing).catch(() => undefined);
    expect(fs.readFileSync(paths.daemonLog, 'utf8')).toContain(`[daemon] execArgv ${JSON.stringify([...DAEMON_NODE_FLAGS, '--max-semi-space-size=8'])}`);
  });

  it('gives up after the wait when the daemon never answers', async () => {
    const { paths, script } = runDirWith(`setTimeout(() => {}, 5000);`);
    const timing = { pollMs: 10, waitMs: 300, graceAfterExitMs: 100 };
    await expect(startDaemon(paths, { script, execArgv: [] }, async () => false, timing)).rejects.toThrow(
      `start daemon: no answer on ${paths.socket} after 0 s (see ${paths.daemonLog})`,
    );
  });
});

describe('parseResponse (the raw HTTP client behind every request)', () => {
  const raw = (text: string) => Buffer.from(text, 'latin1');

  it('reads a Content-Length body and ignores anything after it', () => {
    expect(parseResponse(raw('HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}junk'))).toEqual({ status: 201, body: '{"a":1}' });
  });

  it('decodes a chunked body, chunk extensions included', () => {
    expect(parseResponse(raw('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'))).toEqual({ status: 200, body: '{"a":1}' });
  });

  it('takes the rest of the stream when neither is given, and keeps UTF-8 whole', () => {
    expect(parseResponse(Buffer.concat([raw('HTTP/1.0 404 Not Found\r\nConnection: close\r\n\r\n'), Buffer.from('{"message":"nö"}')]))).toEqual({ status: 404, body: '{"message":"nö"}' });
  });

  it('refuses a cut response, a short body, broken chunks and non-HTTP', () => {
    expect(() => parseResponse(raw('HTTP/1.1 200 OK\r\nContent-Length: 2'))).toThrow(/before a whole response/);
    expect(() => parseResponse(raw('HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{}'))).toThrow(/shorter than its Content-Length/);
    expect(() => parseResponse(raw('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'))).toThrow(/chunked/);
    expect(() => parseResponse(raw('SSH-2.0-OpenSSH\r\n\r\n'))).toThrow(/not HTTP/);
  });
});
