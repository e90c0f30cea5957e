// Run `ip` and `nft` (single commands and batches) and turn their failures into DnsnetError('kernel').
import { execa } from 'execa';
import { DnsnetError, firstLine } from '../errors.js';

export interface IpOptions {
  netns?: string; // run inside this named netns (ip -n NAME)
}

interface Outcome {
  exitCode?: number;
  stdout: string;
  stderr: string;
  failed: boolean;
  message: string;
}

async function run(file: string, args: string[], input?: string): Promise<Outcome> {
  const result = await execa(file, args, { reject: false, stripFinalNewline: true, ...(input === undefined ? {} : { input }) });
  return {
    exitCode: result.exitCode,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    failed: result.failed,
    message: result.message ?? '',
  };
}

function failure(what: string, out: Outcome): DnsnetError {
  // A missing binary has no stderr; execa's message then says what happened (spawn ip ENOENT).
  const why = out.stderr.trim() !== '' ? firstLine(out.stderr) : firstLine(out.message);
  return new DnsnetError('kernel', `${what}: ${why}`, { cause: new Error(out.stderr || out.message) });
}

function nsArgs(opts?: IpOptions): string[] {
  return opts?.netns ? ['-n', opts.netns] : [];
}

/** `ip ARGS...`; resolves to stdout. `what` (default: the command line) starts the error message. */
export async function runIp(args: string[], opts?: IpOptions & { what?: string }): Promise<string> {
  const argv = [...nsArgs(opts), ...args];
  const out = await run('ip', argv);
  if (out.failed) throw failure(opts?.what ?? `ip ${argv.join(' ')}`, out);
  return out.stdout;
}

/**
 * `ip -batch -` with the lines on stdin. Without -force, ip stops at the first failing line and
 * reports it as "Command failed -:N"; the error names that line. The lines before it have been
 * applied: callers roll back.
 */
export async function runIpBatch(lines: string[], opts?: IpOptions & { what?: string }): Promise<void> {
  if (lines.length === 0) return;
  const out = await run('ip', [...nsArgs(opts), '-batch', '-'], `${lines.join('\n')}\n`);
  if (!out.failed) return;
  const lineNo = failedBatchLine(out.stderr);
  const where = lineNo !== undefined && lines[lineNo - 1] !== undefined ? ` (line ${lineNo}: ${lines[lineNo - 1]})` : '';
  throw failure(`${opts?.what ?? 'ip -batch'}${where}`, out);
}

/** The 1-based number of the batch line ip gave up on, from its "Command failed -:N". */
export function failedBatchLine(stderr: string): number | undefined {
  const m = /Command failed -:(\d+)/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

/** `ip -json ARGS...`, parsed. */
export async function ipJson<T = unknown>(args: string[], opts?: IpOptions): Promise<T> {
  const stdout = await runIp(['-json', ...args], opts);
  try {
    return JSON.parse(stdout === '' ? '[]' : stdout) as T;
  } catch (error) {
    throw new DnsnetError('kernel', `ip -json ${args.join(' ')}: unreadable output`, { cause: error });
  }
}

/** `nft -f -` with the script on stdin: one atomic transaction. `check` only validates it (nft -c). */
export async function runNft(script: string, opts?: { check?: boolean; what?: string }): Promise<string> {
  const args = [...(opts?.check ? ['-c'] : []), '-f', '-'];
  const out = await run('nft', args, script);
  if (out.failed) throw failure(opts?.what ?? `nft ${args.join(' ')}`, out);
  return out.stdout;
}
