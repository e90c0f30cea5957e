// Spawning a Launch: exit codes pass through, signals become 128+N, a missing program is dnsnet's own 125.
import { describe, expect, it, vi } from 'vitest';
import { exitCodeOf, runLaunch } from '../../src/cli/launch.js';
import { DnsnetError } from '../../src/errors.js';

const sh = (script: string) => ({ argv: ['/bin/sh', '-c', script], env: { PATH: '/usr/bin:/bin', MARK: 'x' } });

describe('runLaunch', () => {
  it.each([
    ['exit 0', 0],
    ['exit 3', 3],
    ['exit 126', 126],
    ['exit 127', 127],
    ['kill -TERM $$', 128 + 15],
    ['kill -KILL $$', 128 + 9],
  ])('%s -> %d', async (script, code) => {
    expect(await runLaunch(sh(script))).toBe(code);
  });

  it('uses exactly the env it is given', async () => {
    expect(await runLaunch(sh('test "$MARK" = x && test -z "$HOME"'))).toBe(0);
  });

  it('reports the pid once the command runs', async () => {
    const pids: number[] = [];
    expect(await runLaunch(sh('exit 0'), { started: async (pid) => void pids.push(pid) })).toBe(0);
    expect(pids).toHaveLength(1);
    expect(pids[0]).toBeGreaterThan(0);
  });

  it('keeps waiting for the command when the pid report fails, and says so', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const code = await runLaunch(sh('sleep 0.05; exit 4'), {
      started: async () => {
        throw new DnsnetError('internal', 'report started: daemon gone');
      },
    });
    expect(code).toBe(4);
    expect(stderr).toHaveBeenCalledWith('dnsnet: report started: daemon gone\n');
    stderr.mockRestore();
  });

  it('a program that does not exist is a DnsnetError (exit 125)', async () => {
    await expect(runLaunch({ argv: ['/nonexistent/launcher', 'x'], env: {} })).rejects.toThrow(/^start \/nonexistent\/launcher: spawn \/nonexistent\/launcher ENOENT$/);
  });

  it('leaves no signal handlers behind', async () => {
    const before = process.listenerCount('SIGTERM');
    await runLaunch(sh('exit 0'));
    await runLaunch({ argv: ['/nonexistent/launcher'], env: {} }).catch(() => {});
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});

describe('exitCodeOf', () => {
  it.each<[number | null, NodeJS.Signals | null, number]>([
    [0, null, 0],
    [42, null, 42],
    [null, 'SIGINT', 130],
    [null, 'SIGTERM', 143],
  ])('(%s, %s) -> %d', (code, signal, expected) => {
    expect(exitCodeOf(code, signal)).toBe(expected);
  });
});
