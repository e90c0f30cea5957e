#!/usr/bin/env node
// Builds native/udpbatch.c into dist/native/udpbatch.node with the system C compiler and the headers
// that ship with Node (N-API + libuv). No node-gyp: one C file, one command. When it cannot be built,
// says why and exits 0: the resolver then serves UDP through node:dgram (slower, same behaviour).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'native', 'udpbatch.c');
const out = join(root, 'dist', 'native', 'udpbatch.node');
const candidates = [
  process.env.DNSNET_NODE_HEADERS,
  resolve(process.execPath, '..', '..', 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
].filter(Boolean);
const headers = candidates.find((d) => existsSync(join(d, 'node_api.h')) && existsSync(join(d, 'uv.h')));
if (!headers) {
  console.warn(`build-native: no Node headers (node_api.h, uv.h) in ${candidates.join(', ')}: UDP falls back to node:dgram`);
  process.exit(0);
}
const cc = process.env.CC || 'cc';
mkdirSync(dirname(out), { recursive: true });
try {
  execFileSync(cc, ['-O2', '-g', '-Wall', '-Wextra', '-Werror', '-fPIC', '-shared', '-fvisibility=hidden', `-I${headers}`, '-o', out, src], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
} catch (error) {
  console.warn(`build-native: ${cc} failed (${error.message.split('\n')[0]}): UDP falls back to node:dgram`);
  process.exit(0);
}
