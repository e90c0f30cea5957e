// Throwaway network namespaces for integration tests: `dnt-<random hex>`, lo up, resolv.conf pointing at 127.0.0.11.
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { execa, type Result } from 'execa';

export interface TestNetns {
  name: string;
  path: string; // /run/netns/<name>
  /** Run argv inside the netns (`ip netns exec`, which also bind-mounts /etc/netns/<name>/resolv.conf). */
  exec(argv: string[], opts?: { input?: string; timeoutMs?: number }): Promise<Result>;
  destroy(): Promise<void>;
}

export async function createTestNetns(): Promise<TestNetns> {
  const name = `dnt-${randomBytes(5).toString('hex')}`;
  const etcDir = `/etc/netns/${name}`;
  await execa('ip', ['netns', 'add', name]);
  const destroy = async (): Promise<void> => {
    const errors: string[] = [];
    await execa('ip', ['netns', 'del', name], { reject: false }).then((r) => r.exitCode !== 0 && errors.push(String(r.stderr)));
    await rm(etcDir, { recursive: true, force: true }).catch((e: Error) => errors.push(e.message));
    if (errors.length > 0) throw new Error(`destroy netns ${name}: ${errors.join('; ')}`);
  };
  try {
    await execa('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    // Inside, only lo exists; this file just makes glibc ask our resolver (never the host's).
    await mkdir(etcDir, { recursive: true });
    await writeFile(`${etcDir}/resolv.conf`, 'nameserver 127.0.0.11\noptions timeout:2 attempts:1\n');
  } catch (error) {
    await destroy().catch(() => {});
    throw error;
  }
  return {
    name,
    path: `/run/netns/${name}`,
    exec: (argv, opts = {}) =>
      execa('ip', ['netns', 'exec', name, ...argv], { reject: false, timeout: opts.timeoutMs ?? 20_000, ...(opts.input !== undefined ? { input: opts.input } : {}) }),
    destroy,
  };
}
