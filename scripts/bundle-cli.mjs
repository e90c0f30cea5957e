// Build step after tsc: dist/cli/main.js becomes one file holding the CLI and commander, so a `dnsnet`
// command pays for one module instead of ~15 (Node 20's ESM loader resolves, reads and links each,
// and commander is CommonJS behind an ESM wrapper). Measured: `dnsnet version` 182 -> 132 ms median
// wall (40 interleaved runs). The daemon and demo stay separate files, imported only by `dnsnet daemon`
// / `dnsnet demo`; errors.js stays external so DnsnetError is one class on both sides.
import { mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const errors = fileURLToPath(new URL('../dist/errors.js', import.meta.url));
// Written under the same file name in a temp dir, so the sourceMappingURL comment names main.js.map.
const tmpDir = await mkdtemp(path.join(path.dirname(main), '.bundle-'));

try {
  const bundle = await rolldown({
    input: main,
    platform: 'node',
    external: (id, importer) => id === errors || (importer !== undefined && id.endsWith('/errors.js')),
    logLevel: 'warn',
  });
  await bundle.write({ file: path.join(tmpDir, 'main.js'), format: 'esm', sourcemap: true });
  await bundle.close();
  await rename(path.join(tmpDir, 'main.js'), main);
  await rename(path.join(tmpDir, 'main.js.map'), `${main}.map`);
} finally {
  await rm(tmpDir, { recursive: true, force: true });
}
