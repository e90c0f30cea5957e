#!/usr/bin/env -S DNSNET_HOST_CA_CERTS=${NODE_EXTRA_CA_CERTS} NODE_EXTRA_CA_CERTS= node
// The `dnsnet` command: parse argv, run one command against the daemon, exit with Docker's codes.
import { fileURLToPath } from 'node:url';
import { Client, clientPathsFromEnv } from './client.js';
import { reportFailure } from './exit.js';
import { createHandlers, readVersion } from './handlers.js';
import { buildProgram } from './program.js';
import { restoreCallerEnv } from './caller-env.js';

restoreCallerEnv();

export async function runCli(argv: string[]): Promise<number> {
  const version = readVersion();
  // The daemon, when none answers, is this very script run as `dnsnet daemon` under the same Node flags.
  const client = new Client({
    paths: clientPathsFromEnv(),
    daemon: { script: fileURLToPath(import.meta.url), execArgv: process.execArgv },
  });
  let code = 0;
  const program = buildProgram(createHandlers(client, version), { version, onExit: (c) => (code = c) });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    return reportFailure(error);
  }
}

// `dnsnet logs ... | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

// No top-level await: this file is bundled to CommonJS (scripts/bundle-cli.mjs).
void runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
