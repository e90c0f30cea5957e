// Where the daemon listens, as both sides of the API see it: the run directory and the files in it.
import path from 'node:path';

export const DEFAULT_RUN_ROOT = '/run/dnsnet';

/** The run directory (DNSNET_RUN), resolved. */
export function runRootFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.DNSNET_RUN || DEFAULT_RUN_ROOT);
}

export const runFiles = {
  socket: (runRoot: string) => path.join(runRoot, 'dnsnet.sock'),
  pidFile: (runRoot: string) => path.join(runRoot, 'dnsnet.pid'),
  daemonLog: (runRoot: string) => path.join(runRoot, 'daemon.log'),
};

/** The CLI's view of where the daemon lives (DESIGN "Files"); only the run dir matters to a client. */
export interface ClientPaths {
  runDir: string;
  socket: string;
  daemonLog: string;
}

export function clientPathsFromEnv(env: NodeJS.ProcessEnv = process.env): ClientPaths {
  const runDir = runRootFromEnv(env);
  return { runDir, socket: runFiles.socket(runDir), daemonLog: runFiles.daemonLog(runDir) };
}
