// Test helper: parse argv with the real `dnsnet` program and capture what each handler was given.
import type { Handlers } from '../../src/cli/program.js';
import { buildProgram } from '../../src/cli/program.js';

export interface Call {
  handler: keyof Handlers;
  args: unknown[];
}

export async function parseArgv(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Call> {
  let call: Call | undefined;
  const handlers = new Proxy({} as Handlers, {
    get: (_target, handler) => async (...args: unknown[]) => {
      call = { handler: handler as keyof Handlers, args };
      return 0;
    },
  });
  const quiet = { writeOut: () => {}, writeErr: () => {} };
  const program = buildProgram(handlers, { version: '0.0.0-test', onExit: () => {}, env, output: quiet });
  await program.parseAsync(argv, { from: 'user' });
  if (!call) throw new Error(`no handler ran for ${argv.join(' ')}`);
  return call;
}
