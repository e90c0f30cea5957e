// `run IMAGE`: the container's own writable layer, made before each start. The overlay itself is mounted
// by the container's init in its private mount namespace (netns/sandbox.ts), so it goes when the container
// does; what stays is upper/ (its changes, kept across stop and start, removed with the container).
import fs from 'node:fs';
import path from 'node:path';
import { paths, type Roots } from '../state/paths.js';
import type { ContainerRecord } from '../state/types.js';

export interface ImageRoot {
  merged: string;
  upper: string;
  work: string;
}

export function imageRoot(roots: Roots, id: string): ImageRoot {
  const dir = paths.rootfsDir(roots, id);
  return { merged: path.join(dir, 'merged'), upper: path.join(dir, 'upper'), work: path.join(dir, 'work') };
}

/**
 * The directories, and in upper/ what the init mounts over whether or not the image has it: /etc/hosts,
 * /etc/hostname, /etc/resolv.conf (empty files, shadowed by the bind mounts) and /proc, /sys, /dev.
 */
export function prepareImageRoot(roots: Roots, c: ContainerRecord): void {
  if (!c.image) return;
  const r = imageRoot(roots, c.id);
  for (const d of [r.merged, r.work, path.join(r.upper, 'etc'), path.join(r.upper, 'proc'), path.join(r.upper, 'sys'), path.join(r.upper, 'dev')]) {
    fs.mkdirSync(d, { recursive: true, mode: 0o755 });
  }
  for (const f of ['hosts', 'hostname', 'resolv.conf']) {
    const p = path.join(r.upper, 'etc', f);
    if (!fs.existsSync(p)) fs.writeFileSync(p, '', { mode: 0o644 });
  }
}
