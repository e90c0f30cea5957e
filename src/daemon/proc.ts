// Process facts from /proc: is a pid still the process we started (pid + start time), and its state.
import fs from 'node:fs';

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), or undefined when gone. */
export function readStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined; // a zombie has exited already
    return rest[19];
  } catch {
    return undefined;
  }
}

/** Whether `pid` is one of `ancestors` or a descendant of one (walked up through /proc/PID/stat's ppid). */
export function descendsFrom(pid: number, ancestors: ReadonlySet<number>): boolean {
  for (let p = pid, hops = 0; p > 1 && hops < 4096; hops++) {
    if (ancestors.has(p)) return true;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return false;
    }
  }
  return false;
}

export function isAlive(pid: number, startTime: string | undefined): boolean {
  if (pid <= 0) return false;
  const now = readStartTime(pid);
  return now !== undefined && (startTime === undefined || now === startTime);
}
