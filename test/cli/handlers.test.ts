// Commands end to end against a fake daemon: the requests they send, what they print, the exit code.
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '../../src/cli/client.js';
import { createHandlers } from '../../src/cli/handlers.js';
import type { Handlers } from '../../src/cli/program.js';
import { json, startFakeDaemon, type FakeDaemon, type Route } from './fake-daemon.js';

const ID = 'abcdef0123456789'.repeat(4);
let fake: FakeDaemon | undefined;

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

function sink() {
  let text = '';
  return { stream: new Writable({ write: (c: Buffer, _e, cb) => ((text += c.toString()), cb()) }), text: () => text };
}

async function setup(routes: Record<string, Route>) {
  fake = await startFakeDaemon(routes);
  const stdout = sink();
  const stderr = sink();
  const handlers: Handlers = createHandlers(new Client({ paths: fake.paths }), '1.2.3', { stdout: stdout.stream, stderr: stderr.stream });
  return { handlers, stdout: stdout.text, stderr: stderr.text, seen: fake.seen };
}

const notFound = (what: string) => json(404, { code: 'not-found', message: `no such container: ${what}` });

describe('network commands', () => {
  it('create prints the full ID', async () => {
    const t = await setup({ 'POST /networks': json(201, { Id: ID, Name: 'app' }) });
    const spec = { name: 'app', subnets: [], gateways: [], ipv6: false, internal: false, options: {} };
    expect(await t.handlers.networkCreate(spec)).toBe(0);
    expect(t.stdout()).toBe(`${ID}\n`);
    expect(t.seen[0]).toEqual({ method: 'POST', url: '/networks', body: spec });
  });

  it('ls -q prints short IDs sorted by name', async () => {
    const t = await setup({ 'GET /networks': json(200, [{ Id: 'b'.repeat(64), Name: 'z' }, { Id: 'a'.repeat(64), Name: 'bridge' }]) });
    expect(await t.handlers.networkLs({ quiet: true, format: 'table' })).toBe(0);
    expect(t.stdout()).toBe('aaaaaaaaaaaa\nbbbbbbbbbbbb\n');
  });

  it('rm prints each name given, reports each failure, exits 125 if any failed', async () => {
    const t = await setup({ 'DELETE /networks/a': json(200, {}), 'DELETE /networks/c': json(200, {}) });
    expect(await t.handlers.networkRm(['a', 'b', 'c'])).toBe(125);
    expect(t.stdout()).toBe('a\nc\n');
    expect(t.stderr()).toBe('dnsnet: no route DELETE /networks/b\n');
  });

  it('connect sends the spec; refs are URL-encoded', async () => {
    const t = await setup({ 'POST /networks/my%20net/connect': json(200, {}) });
    expect(await t.handlers.networkConnect('my net', { container: 'web', aliases: ['w'] })).toBe(0);
    expect(t.seen[0]?.body).toEqual({ container: 'web', aliases: ['w'] });
  });

  it('prune lists what went, like Docker', async () => {
    const t = await setup({ 'POST /networks/prune': json(200, { deleted: ['a', 'b'] }) });
    expect(await t.handlers.networkPrune()).toBe(0);
    expect(t.stdout()).toBe('Deleted Networks:\na\nb\n');
  });
});

describe('container commands', () => {
  const runSpec = { detach: true, autoRemove: false, networkAliases: [], links: [], extraHosts: [], dns: [], dnsSearch: [], dnsOptions: [], env: [], cmd: ['sleep', '9'] };

  it('run -d prints the ID', async () => {
    const t = await setup({ 'POST /containers': json(201, { id: ID, name: 'web' }) });
    expect(await t.handlers.run(runSpec)).toBe(0);
    expect(t.stdout()).toBe(`${ID}\n`);
    expect(t.seen[0]?.body).toEqual(runSpec);
  });

  it('foreground run spawns the launch, reports started and exited, exits with its code', async () => {
    const launch = { argv: ['/bin/sh', '-c', 'exit 3'], env: {} };
    const t = await setup({
      'POST /containers': json(201, { id: ID, name: 'web', launch }),
      [`POST /containers/${ID}/started`]: json(200, {}),
      [`POST /containers/${ID}/exited`]: json(200, {}),
    });
    expect(await t.handlers.run({ ...runSpec, detach: false })).toBe(3);
    expect(t.seen.map((s) => s.url)).toEqual(['/containers', `/containers/${ID}/started`, `/containers/${ID}/exited`]);
    expect(t.seen[1]?.body).toEqual({ pid: expect.any(Number) });
    expect(t.seen[2]?.body).toEqual({ exitCode: 3 });
  });

  it('foreground run whose launcher cannot start: 125, and the daemon is told', async () => {
    const launch = { argv: ['/nonexistent/launcher'], env: {} };
    const t = await setup({ 'POST /containers': json(201, { id: ID, name: 'web', launch }), [`POST /containers/${ID}/exited`]: json(200, {}) });
    await expect(t.handlers.run({ ...runSpec, detach: false })).rejects.toThrow('start /nonexistent/launcher');
    expect(t.seen[1]).toEqual({ method: 'POST', url: `/containers/${ID}/exited`, body: { exitCode: 125 } });
  });

  it('exec spawns what the daemon returns', async () => {
    const t = await setup({ 'POST /containers/web/exec': json(200, { argv: ['/bin/sh', '-c', 'exit 7'], env: {} }) });
    expect(await t.handlers.exec('web', { cmd: ['x'], env: [] })).toBe(7);
  });

  it('ps -a asks for all; -q prints short IDs', async () => {
    const t = await setup({ 'GET /containers?all=1': json(200, [{ Id: ID, Created: '2026-01-01T00:00:00Z' }]) });
    expect(await t.handlers.ps({ all: true, quiet: true, format: 'table' })).toBe(0);
    expect(t.stdout()).toBe(`${ID.slice(0, 12)}\n`);
  });

  it('inspect prints the array of what was found and an error line per miss', async () => {
    const t = await setup({ 'GET /containers/web/json': json(200, { Id: ID, Name: '/web' }), 'GET /containers/nope/json': notFound('nope') });
    expect(await t.handlers.inspect(['web', 'nope'])).toBe(125);
    expect(JSON.parse(t.stdout())).toEqual([{ Id: ID, Name: '/web' }]);
    expect(t.stderr()).toBe('dnsnet: no such container: nope\n');
  });

  it('stop -t sends the timeout and prints each name', async () => {
    const t = await setup({ 'POST /containers/a/stop': json(200, {}), 'POST /containers/b/stop': json(200, {}) });
    expect(await t.handlers.stop(['a', 'b'], 0)).toBe(0);
    expect(t.seen.map((s) => s.body)).toEqual([{ timeout: 0 }, { timeout: 0 }]);
    expect(t.stdout()).toBe('a\nb\n');
  });

  it('rm -f asks with force=1', async () => {
    const t = await setup({ 'DELETE /containers/a?force=1': json(200, {}) });
    expect(await t.handlers.rm(['a'], true)).toBe(0);
    expect(t.stdout()).toBe('a\n');
  });

  it('logs -f streams until the daemon ends it', async () => {
    const t = await setup({
      'GET /containers/a/logs?follow=1': (_b, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('hello\n');
        setTimeout(() => res.end('bye\n'), 20);
      },
    });
    expect(await t.handlers.logs('a', true)).toBe(0);
    expect(t.stdout()).toBe('hello\nbye\n');
  });

  it('logs of an unknown container fails with the daemon message', async () => {
    const t = await setup({ 'GET /containers/x/logs': notFound('x') });
    await expect(t.handlers.logs('x', false)).rejects.toThrow('no such container: x');
  });
});

describe('system commands', () => {
  it('stats --format json', async () => {
    const t = await setup({ 'GET /stats': json(200, { resolver: { queries: 2 } }) });
    expect(await t.handlers.stats('json')).toBe(0);
    expect(t.stdout()).toBe('{\n  "resolver": {\n    "queries": 2\n  }\n}\n');
  });

  it('version', async () => {
    const t = await setup({});
    expect(await t.handlers.version()).toBe(0);
    expect(t.stdout()).toBe('dnsnet 1.2.3\n');
  });
});
