// Build step after tsc: the `dnsnet` command becomes one CommonJS file, dist/cli/dnsnet.cjs, holding the
// CLI, errors.ts and commander. Why CommonJS: Node 20 starts a CommonJS entry without its ES module
// loader, and `require` of a built-in costs nothing for those Node has loaded already, where `import`
// builds a module facade per built-in (node:fs alone ~6 ms here). Measured: see bench/RESULTS.md.
// The daemon and demo stay ES modules under dist/, loaded with import() only by `dnsnet daemon` /
// `dnsnet demo`; DnsnetError is recognised across both copies (src/errors.ts).
import { mkdtemp, rename, rm, chmod } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const out = fileURLToPath(new URL('../dist/cli/dnsnet.cjs', import.meta.url));
// Written under the same file name in a temp dir, so the sourceMappingURL comment names dnsnet.cjs.map.
const tmpDir = await mkdtemp(path.join(path.dirname(main), '.bundle-'));

try {
  const bundle = await rolldown({ input: main, platform: 'node', logLevel: 'warn' });
  await bundle.write({ file: path.join(tmpDir, 'dnsnet.cjs'), format: 'cjs', sourcemap: true });
  await bundle.close();
  await rename(path.join(tmpDir, 'dnsnet.cjs'), out);
  await rename(path.join(tmpDir, 'dnsnet.cjs.map'), `${out}.map`);
  await chmod(out, 0o755);
} finally {
  await rm(tmpDir, { recursive: true, force: true });
}
