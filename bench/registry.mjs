// A read-only registry for the image bench: serves an OCI image layout directory (what `dnsnet save` writes,
// unpacked) over the distribution API on IP:PORT, plain HTTP. Tags come from index.json's
// org.opencontainers.image.ref.name annotations; every repository name serves the same layout.
//   node bench/registry.mjs LAYOUT_DIR IP PORT      prints "ready" once listening
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const [dir, ip, port] = process.argv.slice(2);
const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
const tags = new Map();
for (const m of index.manifests ?? []) {
  const tag = m.annotations?.['org.opencontainers.image.ref.name'];
  if (tag) tags.set(tag, m);
}
const blob = (digest) => path.join(dir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));

http
  .createServer((req, res) => {
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
    if (req.url === '/v2/' || req.url === '/v2') return res.writeHead(200).end('{}');
    if (!m) return res.writeHead(404).end();
    const [, , kind, ref] = m;
    const digest = kind === 'manifests' && !ref.startsWith('sha256:') ? tags.get(ref)?.digest : ref;
    if (!digest || !/^sha256:[a-f0-9]{64}$/.test(digest) || !fs.existsSync(blob(digest))) return res.writeHead(404).end();
    const type = kind === 'manifests' ? 'application/vnd.oci.image.manifest.v1+json' : 'application/octet-stream';
    res.writeHead(200, { 'content-type': type, 'content-length': String(fs.statSync(blob(digest)).size), 'docker-content-digest': digest });
    fs.createReadStream(blob(digest)).pipe(res);
  })
  .listen(Number(port), ip, () => console.log('ready'));
