// Watch the host resolv.conf and report each new content, whatever way it was changed.
import { watch, type FSWatcher } from 'chokidar';
import { lstat, readFile, readlink, realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

export interface WatchHostResolvConfOptions {
  debounceMs?: number; // quiet time after the last event before the file is read (default 100)
  recheckMs?: number; // period of the safety-net re-read (default 5000)
  initialText?: string; // the content the caller already has (default: read at start)
}

export interface HostResolvConfWatcher {
  ready: Promise<void>; // resolves once the directories are watched; never rejects
  close(): Promise<void>;
}

// The directories to watch and, in them, the names that matter: the file itself and each hop of
// its symlink chain (systemd-resolved: /etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf).
interface Layout {
  dirs: Set<string>;
  files: Set<string>;
}

const MAX_HOPS = 8;

async function realDir(dir: string): Promise<string | undefined> {
  try {
    return await realpath(dir);
  } catch {
    return undefined;
  }
}

async function readLayout(path: string): Promise<Layout> {
  const layout: Layout = { dirs: new Set(), files: new Set() };
  let p = path;
  for (let hop = 0; hop <= MAX_HOPS; hop++) {
    const dir = await realDir(dirname(p));
    if (dir === undefined) break;
    layout.dirs.add(dir);
    layout.files.add(join(dir, basename(p)));
    let target: string;
    try {
      if (!(await lstat(p)).isSymbolicLink()) break;
      target = await readlink(p);
    } catch {
      break;
    }
    p = resolve(dir, target); // a relative target is relative to the link's real directory
  }
  return layout;
}

/** The content, '' when missing (or a dangling symlink), undefined when unreadable for now. */
async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? '' : undefined;
  }
}

/**
 * Calls `onChange` with the new text each time the content of `path` (symlinks followed) differs
 * from what was last delivered: in-place writes, rename-over, re-pointed symlinks, deletion ('')
 * and re-creation. Directories are watched rather than the file, since a rename or a re-pointed
 * symlink leaves a watch on the old inode deaf (NOTES: "Watching the host resolv.conf").
 */
export function watchHostResolvConf(
  path: string,
  onChange: (text: string) => void,
  opts: WatchHostResolvConfOptions = {},
): HostResolvConfWatcher {
  const file = resolve(path);
  const debounceMs = opts.debounceMs ?? 100;
  const recheckMs = opts.recheckMs ?? 5000;
  let last = opts.initialText;
  let layout: Layout = { dirs: new Set(), files: new Set() };
  let watcher: FSWatcher | undefined;
  let stale = false; // a watched directory was removed: chokidar has dropped its watch
  let closed = false;
  let debounce: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;

  const log = (what: string, e: unknown): void => {
    console.error(`[resolvconf] watch ${file}: ${what}: ${e instanceof Error ? e.message : String(e)}`);
  };

  const deliver = (text: string): void => {
    try {
      const r: unknown = onChange(text);
      if (r instanceof Promise) r.catch((e: unknown) => log('change handler failed', e));
    } catch (e) {
      log('change handler failed', e);
    }
  };

  const schedule = (): void => {
    if (closed) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => void check(), debounceMs);
  };

  // A fresh chokidar watcher whenever the directory set changes: adding to and unwatching from a
  // live one races with chokidar's own clean-up of a removed directory and can leave it deaf.
  const rewatch = async (dirs: Set<string>): Promise<void> => {
    const old = watcher;
    watcher = undefined;
    await old?.close();
    if (closed || dirs.size === 0) return; // no directory yet: the periodic re-check looks again
    const w = watch([...dirs], {
      followSymlinks: false,
      ignoreInitial: true,
      depth: 0,
      // Only the directories and the names in them that lead to the file (not all of /etc).
      ignored: (p: string) => !layout.dirs.has(p) && !layout.files.has(p),
    });
    watcher = w;
    w.on('all', (event, p) => {
      // A directory on the path removed, or created again (a new inode our watch does not follow: when
      // removal and re-creation are quick, the removal's event may never come): watch afresh.
      if ((event === 'unlinkDir' || event === 'addDir') && layout.dirs.has(p)) stale = true;
      schedule();
    });
    w.on('error', (e: unknown) => log('watcher error', e));
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((r) => {
      w.once('ready', () => r());
      timer = setTimeout(r, 2000); // never hang a check on chokidar
    });
    clearTimeout(timer);
  };

  const checkOnce = async (): Promise<void> => {
    const next = await readLayout(file);
    if (closed) return;
    const moved = stale || !sameSet(next.dirs, layout.dirs);
    layout = next;
    if (moved || watcher === undefined) {
      stale = false;
      await rewatch(next.dirs);
    }
    // Read after the watch is in place, so a change made meanwhile is not lost.
    const text = await readText(file);
    if (closed || text === undefined || text === last) return;
    last = text;
    deliver(text);
  };

  // One check at a time; a request during a check runs one more afterwards.
  const check = (): Promise<void> => {
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await checkOnce();
        } catch (e) {
          log('check failed', e);
        }
      } while (again && !closed);
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  const recheck = setInterval(() => void check(), recheckMs);
  recheck.unref();

  // The first check sets up the watch (through `check`, so it never overlaps another one).
  const ready = (async () => {
    if (last === undefined) last = (await readText(file)) ?? '';
    await check();
  })();

  return {
    ready,
    async close() {
      closed = true;
      clearTimeout(debounce);
      clearInterval(recheck);
      await ready;
      await running;
      await watcher?.close();
      watcher = undefined;
    },
  };
}

function sameSet(a: Set<string>, b: Set<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}
