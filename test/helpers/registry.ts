// Images for tests, built offline at test time, and a registry that serves them: the OCI distribution API
// on a loopback address (manifests by tag and digest, blobs, optional Bearer tokens from a realm), enough
// for `dnsnet pull`. Our own minimal server (Debian's docker-registry would need a config and a service
// account; this needs nothing), with switches a real registry lacks: a corrupted blob, to see a digest
// mismatch refused.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { c as tarCreate } from 'tar';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

const sha = (b: Buffer) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

/** A layer's files: content, a symlink, or a directory (`null`). Whiteouts are plain files named `.wh.X`. */
export type LayerFiles = Record<string, string | Buffer | { symlink: string } | { mode: number; content: string | Buffer } | null>;

export interface BuiltImage {
  manifest: Buffer;
  manifestDigest: string;
  mediaType: string;
  config: Buffer;
  configDigest: string;
  blobs: Map<string, Buffer>;
}

async function layerTar(files: LayerFiles): Promise<Buffer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dnt-layer-'));
  try {
    for (const [p, v] of Object.entries(files)) {
      const full = path.join(dir, p);
      if (v === null) {
        fs.mkdirSync(full, { recursive: true });
        continue;
      }
      fs.mkdirSync(path.dirname(full), { recursive: true });
      if (typeof v === 'object' && 'symlink' in v) fs.symlinkSync(v.symlink, full);
      else if (typeof v === 'object' && 'mode' in v) fs.writeFileSync(full, v.content, { mode: v.mode });
      else fs.writeFileSync(full, v);
    }
    const chunks: Buffer[] = [];
    const entries = fs.readdirSync(dir);
    const stream = tarCreate({ cwd: dir, portable: true, noMtime: true }, entries);
    for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
    return Buffer.concat(chunks);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** An image of `layers` (bottom first) with `config` (Docker's Config: Entrypoint, Cmd, Env, ...). */
export async function buildImage(layers: LayerFiles[], config: Record<string, unknown>, opts: { docker?: boolean; arch?: string } = {}): Promise<BuiltImage> {
  const blobs = new Map<string, Buffer>();
  const diffIds: string[] = [];
  const descs: { mediaType: string; digest: string; size: number }[] = [];
  for (const files of layers) {
    const tar = await layerTar(files);
    const gz = zlib.gzipSync(tar);
    diffIds.push(sha(tar));
    blobs.set(sha(gz), gz);
    descs.push({ mediaType: opts.docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(gz), size: gz.length });
  }
  const cfg = Buffer.from(
    JSON.stringify({ created: '2026-11-01T00:00:00Z', architecture: opts.arch ?? 'amd64', os: 'linux', config, rootfs: { type: 'layers', diff_ids: diffIds } }),
  );
  blobs.set(sha(cfg), cfg);
  const mediaType = opts.docker ? DOCKER_MANIFEST : OCI_MANIFEST;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: opts.docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json', digest: sha(cfg), size: cfg.length },
      layers: descs,
    }),
  );
  return { manifest, manifestDigest: sha(manifest), mediaType, config: cfg, configDigest: sha(cfg), blobs };
}

/** A multi-platform index over images (each with its platform). */
export function buildIndex(images: { image: BuiltImage; arch: string }[]): { manifest: Buffer; digest: string } {
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: images.map(({ image, arch }) => ({ mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length, platform: { os: 'linux', architecture: arch } })),
    }),
  );
  return { manifest, digest: sha(manifest) };
}

/** The busybox-static userland (Debian's), as a layer: /bin/busybox and its applets as symlinks. */
export function busyboxLayer(applets = ['sh', 'ls', 'cat', 'echo', 'id', 'pwd', 'ping', 'nslookup', 'wget', 'hostname', 'env', 'sleep', 'test', 'httpd', 'nc', 'ip', 'true', 'false', 'stat']): LayerFiles {
  const files: LayerFiles = { 'bin/busybox': { mode: 0o755, content: fs.readFileSync('/bin/busybox') } };
  for (const a of applets) files[`bin/${a}`] = { symlink: 'busybox' };
  files['etc/passwd'] = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n';
  files['etc/group'] = 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\n';
  files['tmp'] = null;
  files['root'] = null;
  return files;
}

export interface TestRegistry {
  /** host:port, to put in a reference: `${host}/team/app:v1`. */
  host: string;
  put(repo: string, tag: string | undefined, image: BuiltImage): void;
  putIndex(repo: string, tag: string, index: { manifest: Buffer; digest: string }): void;
  /** Serve this blob with one byte changed (a digest mismatch). */
  corrupt(digest: string): void;
  /** Paths asked for, in order (to see what a second pull fetched). */
  requests: string[];
  close(): Promise<void>;
}

/**
 * A registry on `ip` (a 127.x address), port chosen by the kernel; `auth`: Bearer tokens from /token;
 * `basic`: and the token only for these credentials (`user:password`), as a private repository.
 */
export async function startRegistry(ip: string, opts: { auth?: boolean; basic?: string } = {}): Promise<TestRegistry> {
  const manifests = new Map<string, { body: Buffer; type: string }>(); // repo@ref -> manifest
  const blobs = new Map<string, Buffer>();
  const corrupted = new Set<string>();
  const requests: string[] = [];
  const token = crypto.randomBytes(8).toString('hex');
  let host = '';
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    requests.push(url.pathname);
    if (url.pathname === '/token') {
      if (opts.basic && req.headers.authorization !== `Basic ${Buffer.from(opts.basic).toString('base64')}`) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
      return;
    }
    if (opts.auth && req.headers.authorization !== `Bearer ${token}`) {
      const m = /^\/v2\/(.+)\/(manifests|blobs)\//.exec(url.pathname);
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="test-registry",scope="repository:${m?.[1] ?? ''}:pull"`, 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      res.writeHead(200).end('{}');
      return;
    }
    const notFound = (code: string) => res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code, message: 'unknown' }] }));
    if (!m) return notFound('NAME_UNKNOWN');
    const [, repo, kind, ref] = m as unknown as [string, string, string, string];
    if (kind === 'manifests') {
      const found = manifests.get(`${repo}@${ref}`);
      if (!found) return notFound('MANIFEST_UNKNOWN');
      res.writeHead(200, { 'content-type': found.type, 'docker-content-digest': sha(found.body) }).end(found.body);
      return;
    }
    const blob = blobs.get(ref);
    if (!blob) return notFound('BLOB_UNKNOWN');
    const body = corrupted.has(ref) ? Buffer.concat([blob.subarray(0, blob.length - 1), Buffer.from([blob[blob.length - 1]! ^ 0xff])]) : blob;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, ip, resolve));
  host = `${ip}:${(server.address() as AddressInfo).port}`;
  return {
    host,
    requests,
    put(repo, tag, image) {
      manifests.set(`${repo}@${image.manifestDigest}`, { body: image.manifest, type: image.mediaType });
      if (tag) manifests.set(`${repo}@${tag}`, { body: image.manifest, type: image.mediaType });
      for (const [d, b] of image.blobs) blobs.set(d, b);
    },
    putIndex(repo, tag, index) {
      manifests.set(`${repo}@${index.digest}`, { body: index.manifest, type: OCI_INDEX });
      manifests.set(`${repo}@${tag}`, { body: index.manifest, type: OCI_INDEX });
    },
    corrupt(digest) {
      corrupted.add(digest);
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
