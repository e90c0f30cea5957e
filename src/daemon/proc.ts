// Process facts from /proc: is a pid still the process we started (pid + start time), and its state.
import fs from 'node:fs';

/** The fields of /proc/PID/stat after the command name (rest[0] = state, rest[1] = ppid), or undefined when gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), or undefined when gone. */
export function readStartTime(pid: number): string | undefined {
  const rest = statFields(pid);
  if (!rest || rest[0] === 'Z' || rest[0] === 'X') return undefined; // a zombie has exited already
  return rest[19];
}

/** Whether `pid` is one of `ancestors` or a descendant of one (walked up through /proc/PID/stat's ppid). */
export function descendsFrom(pid: number, ancestors: ReadonlySet<number>): boolean {
  for (let p = pid, hops = 0; p > 1 && hops < 4096; hops++) {
    if (ancestors.has(p)) return true;
    const rest = statFields(p);
    if (!rest) return false;
    p = Number(rest[1]);
  }
  return false;
}

/**
 * Whether `pid` runs in a root of its own yet (not ours): a container's init mounts its root and only then
 * changes into it (`unshare --root`), after `run` / `start` have answered. Undefined when the pid is gone.
 */
export function hasOwnRoot(pid: number): boolean | undefined {
  try {
    const theirs = fs.statSync(`/proc/${pid}/root`);
    const ours = fs.statSync('/');
    return theirs.dev !== ours.dev || theirs.ino !== ours.ino;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number, startTime: string | undefined): boolean {
  if (pid <= 0) return false;
  const now = readStartTime(pid);
  return now !== undefined && (startTime === undefined || now === startTime);
}
