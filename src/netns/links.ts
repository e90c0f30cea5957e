// Whether a link exists in this process's netns. /proc/self/net/dev follows the reader's netns; /sys/class/net
// follows the netns that mounted sysfs, which is the host's for a daemon started inside another netns with
// `nsenter --net` (as netavark's netns is entered): there it named the host's links, not ours.
import fs from 'node:fs';

/** The names of this netns's links, from /proc/self/net/dev (one line each: `  NAME: counters...`). */
export function linkNames(): Set<string> {
  const names = new Set<string>();
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/net/dev', 'latin1');
  } catch {
    return names;
  }
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) names.add(line.slice(0, colon).trim());
  }
  return names;
}

export function hasLink(name: string): boolean {
  return linkNames().has(name);
}
