// Every failure becomes one stderr line `dnsnet: ...` and exit 125; help and version exit 0.
import { describe, expect, it } from 'vitest';
import { describeFailure, EXIT_DNSNET, forEachRef, reportFailure } from '../../src/cli/exit.js';
import { DnsnetError } from '../../src/errors.js';
import { parseArgv } from './parse.js';

async function failureOf(argv: string[]) {
  try {
    await parseArgv(argv);
  } catch (error) {
    return describeFailure(error);
  }
  throw new Error('parse did not fail');
}

describe('describeFailure', () => {
  it.each<[string, unknown, string]>([
    ['a DnsnetError', new DnsnetError('not-found', 'no such container: web'), 'dnsnet: no such container: web\n'],
    ['a conflict', new DnsnetError('conflict', 'create network app: the name is taken'), 'dnsnet: create network app: the name is taken\n'],
    ['a multi-line message', new DnsnetError('kernel', 'create bridge dn-1: \nRTNETLINK answers: File exists\n'), 'dnsnet: create bridge dn-1: RTNETLINK answers: File exists\n'],
    ['a plain Error', new TypeError('x is undefined'), 'dnsnet: x is undefined (DNSNET_DEBUG=1 shows the stack)\n'],
    ['a thrown string', 'boom', 'dnsnet: boom (DNSNET_DEBUG=1 shows the stack)\n'],
  ])('%s -> one line, 125', (_name, error, text) => {
    expect(describeFailure(error)).toEqual({ code: EXIT_DNSNET, text });
  });

  it('shows the stack and its causes only when debugging', () => {
    const error = new DnsnetError('kernel', 'add route: failed', { cause: new Error('EPERM') });
    const { code, text } = describeFailure(error, true);
    expect(code).toBe(125);
    expect(text.split('\n')[0]).toBe('dnsnet: add route: failed');
    expect(text).toContain('at ');
    expect(text).toContain('caused by: Error: EPERM');
    expect(describeFailure(error, false).text).not.toContain('at ');
  });
});

describe('usage errors from commander', () => {
  it.each([
    [['run', '--bogus', 'ls'], "dnsnet: unknown option '--bogus'\n"],
    [['rm'], "dnsnet: missing required argument 'container'\n"],
    [['network', 'create'], "dnsnet: missing required argument 'name'\n"],
    [['logs', 'a', 'b'], "dnsnet: too many arguments for 'logs'. Expected 1 argument but got 2.\n"],
    [['stop', '-t', 'soon', 'a'], "dnsnet: option '-t, --time <seconds>' argument 'soon' is invalid. expected whole seconds.\n"],
  ])('%j -> one line, 125', async (argv, text) => {
    expect(await failureOf(argv)).toEqual({ code: 125, text });
  });

  it('an unknown command with a suggestion stays on one line', async () => {
    const { code, text } = await failureOf(['lgos']);
    expect(code).toBe(125);
    expect(text).toBe("dnsnet: unknown command 'lgos' (Did you mean logs?)\n");
  });

  it.each([[['--help']], [['run', '--help']], [['--version']], [['network']]])('%j exits 0 quietly', async (argv) => {
    expect(await failureOf(argv)).toEqual({ code: 0, text: '' });
  });
});

describe('per-ref commands', () => {
  it('keep going, report each failure, and end with 125', async () => {
    const lines: string[] = [];
    const done: string[] = [];
    const code = await forEachRef(
      ['a', 'missing', 'b'],
      async (ref) => {
        if (ref === 'missing') throw new DnsnetError('not-found', `no such container: ${ref}`);
        done.push(ref);
      },
      { write: (s: string) => lines.push(s) },
    );
    expect(code).toBe(125);
    expect(done).toEqual(['a', 'b']);
    expect(lines).toEqual(['dnsnet: no such container: missing\n']);
  });

  it('exit 0 when all succeed', async () => {
    expect(await forEachRef(['a'], async () => {})).toBe(0);
  });

  it('reportFailure writes the line and returns the code', () => {
    const lines: string[] = [];
    expect(reportFailure(new DnsnetError('invalid', 'bad'), { write: (s: string) => lines.push(s) }, false)).toBe(125);
    expect(lines).toEqual(['dnsnet: bad\n']);
  });
});
