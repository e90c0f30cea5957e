// The one place errors become exit codes and text: one line `dnsnet: <message>` on stderr, exit 125.
import { CommanderError } from 'commander';
import { DnsnetError } from '../errors.js';

/** dnsnet's own failures (SPEC 1); 126/127 and the command's own codes come from the launched process. */
export const EXIT_DNSNET = 125;

/** Commander "errors" that are really help or version output: exit 0, print nothing more. */
const QUIET_COMMANDER_CODES = new Set(['commander.helpDisplayed', 'commander.version', 'commander.help']);

export interface Failure {
  code: number;
  /** What to write to stderr: empty for help/version, else one line (plus the stack when debugging). */
  text: string;
}

export function describeFailure(error: unknown, debug = false): Failure {
  if (error instanceof CommanderError) {
    if (QUIET_COMMANDER_CODES.has(error.code)) return { code: 0, text: '' };
    return { code: EXIT_DNSNET, text: `dnsnet: ${oneLine(error.message.replace(/^error: /, ''))}\n` };
  }
  const message = error instanceof Error ? error.message : String(error);
  // A plain Error here is a bug or an unexpected failure of Node itself: say where to look.
  const hint = error instanceof DnsnetError || debug ? '' : ' (DNSNET_DEBUG=1 shows the stack)';
  let text = `dnsnet: ${oneLine(message)}${hint}\n`;
  if (debug) text += stackOf(error);
  return { code: EXIT_DNSNET, text };
}

/** Write the failure and return its exit code; the CLI's top level and per-ref loops both use this. */
export function reportFailure(error: unknown, stderr: { write(s: string): unknown } = process.stderr, debug = isDebug()): number {
  const failure = describeFailure(error, debug);
  if (failure.text !== '') stderr.write(failure.text);
  return failure.code;
}

export function isDebug(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.DNSNET_DEBUG === '1';
}

/** Run `each` for every ref like Docker does: keep going, report each failure, 125 if any failed. */
export async function forEachRef(refs: string[], each: (ref: string) => Promise<void>, stderr?: { write(s: string): unknown }): Promise<number> {
  let code = 0;
  for (const ref of refs) {
    try {
      await each(ref);
    } catch (error) {
      code = reportFailure(error, stderr) || code;
    }
  }
  return code;
}

function oneLine(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join(' ');
}

function stackOf(error: unknown): string {
  let text = '';
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    text += depth === 0 ? '' : 'caused by: ';
    text += (current instanceof Error ? (current.stack ?? current.message) : String(current)) + '\n';
    current = current instanceof Error ? current.cause : undefined;
  }
  return text;
}
