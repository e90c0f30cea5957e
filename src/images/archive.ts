// `dnsnet save` and `dnsnet load`: images in a tar file, to move them between machines without a registry.
// `save` writes both layouts at once, as Docker 25 does: an OCI image layout (oci-layout, index.json with
// the tags as annotations, blobs/sha256/) and Docker's manifest.json pointing into the same blobs, so
// `docker load`, `podman load`, skopeo and dnsnet all read it. `load` reads either: an OCI layout, or a
// Docker archive (also the older one, with each layer as <id>/layer.tar).
import fs from 'node:fs';
import path from 'node:path';
import { c as tarCreate, x as tarExtract } from 'tar';
import { DnsnetError } from '../errors.js';
import { isGzip, layerCompression } from './layers.js';
import { hostPlatform } from './pull.js';
import { familiarRef, parseImageRef } from './reference.js';
import { MEDIA, sha256, sha256File } from './registry.js';
import type { ImageConfigBlob, ImageLayer, ImageRecord, ImageStore } from './store.js';

const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const NAME_ANNOTATION = 'io.containerd.image.name';
const REF_ANNOTATION = 'org.opencontainers.image.ref.name';

function blobRel(digest: string): string {
  return `blobs/sha256/${digest.replace(/^sha256:/, '')}`;
}

/** The fully qualified name Docker's archives carry (`docker.io/library/busybox:latest`). */
function qualified(tag: string): string {
  const r = parseImageRef(tag);
  return `${r.domain}/${r.path}:${r.tag ?? 'latest'}`;
}

/** Write `images` into a tar at `file` (an OCI layout and Docker's manifest.json over the same blobs). */
export async function saveImages(store: ImageStore, images: ImageRecord[], file: string): Promise<void> {
  const work = fs.mkdtempSync(path.join(store.dir, '.save-'));
  try {
    fs.mkdirSync(path.join(work, 'blobs', 'sha256'), { recursive: true });
    const link = (digest: string) => {
      const to = path.join(work, blobRel(digest));
      if (!fs.existsSync(to)) fs.linkSync(store.blobPath(digest), to);
      return fs.statSync(to).size;
    };
    const index: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[] = [];
    const dockerManifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
    for (const img of images) {
      const configSize = link(img.id);
      for (const l of img.layers) link(l.digest);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA.ociManifest,
          config: { mediaType: OCI_CONFIG, digest: img.id, size: configSize },
          layers: img.layers.map((l) => ({ mediaType: l.mediaType || 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
        }),
      );
      const digest = sha256(manifest);
      fs.writeFileSync(path.join(work, blobRel(digest)), manifest);
      const tags = img.repoTags.length > 0 ? img.repoTags : [undefined];
      for (const t of tags) {
        index.push({
          mediaType: MEDIA.ociManifest,
          digest,
          size: manifest.length,
          ...(t ? { annotations: { [NAME_ANNOTATION]: qualified(t), [REF_ANNOTATION]: parseImageRef(t).tag ?? 'latest' } } : {}),
        });
      }
      dockerManifest.push({ Config: blobRel(img.id), RepoTags: img.repoTags, Layers: img.layers.map((l) => blobRel(l.digest)) });
    }
    fs.writeFileSync(path.join(work, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    fs.writeFileSync(path.join(work, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: index }));
    fs.writeFileSync(path.join(work, 'manifest.json'), JSON.stringify(dockerManifest));
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      await tarCreate({ cwd: work, file: tmp, portable: true }, ['oci-layout', 'index.json', 'manifest.json', 'blobs']);
      fs.renameSync(tmp, file);
    } catch (error) {
      fs.rmSync(tmp, { force: true });
      throw new DnsnetError('kernel', `save to ${file}: ${(error as Error).message}`, { cause: error });
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export interface Loaded {
  /** Tags loaded (familiar), or image IDs for images without one. */
  tags: string[];
  ids: string[];
}

interface ToLoad {
  config: string; // a file of the unpacked archive
  layers: { file: string; mediaType?: string }[];
  tags: string[];
}

/** Read a tar of images (OCI layout or Docker archive) into the store. */
export async function loadImages(store: ImageStore, file: string): Promise<Loaded> {
  const work = fs.mkdtempSync(path.join(store.dir, '.load-'));
  try {
    try {
      await tarExtract({ file, cwd: work, strict: true, preserveOwner: false });
    } catch (error) {
      throw new DnsnetError('invalid', `load ${file}: not a tar of images (${(error as Error).message})`, { cause: error });
    }
    const wanted = fs.existsSync(path.join(work, 'index.json')) ? readOciLayout(work) : fs.existsSync(path.join(work, 'manifest.json')) ? readDockerArchive(work) : undefined;
    if (!wanted) throw new DnsnetError('invalid', `load ${file}: neither an OCI image layout (index.json) nor a Docker archive (manifest.json)`);
    const loaded: Loaded = { tags: [], ids: [] };
    for (const w of wanted) {
      const img = await loadOne(store, w);
      for (const t of w.tags) await store.save(img, t);
      if (w.tags.length === 0) await store.save(img);
      loaded.ids.push(img.id);
      loaded.tags.push(...w.tags);
    }
    return loaded;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    store.collect();
  }
}

function inside(work: string, rel: string): string {
  const p = path.resolve(work, rel);
  if (!p.startsWith(work + path.sep)) throw new DnsnetError('invalid', `load: the archive names a path outside itself: ${rel}`);
  if (!fs.existsSync(p)) throw new DnsnetError('invalid', `load: the archive lacks ${rel}`);
  return p;
}

function readJson<T>(file: string): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    throw new DnsnetError('invalid', `load: ${path.basename(file)} is not JSON`);
  }
}

/** An OCI layout: index.json (maybe nested indexes, then this host's platform) -> manifests -> blobs. */
function readOciLayout(work: string): ToLoad[] {
  type Desc = { mediaType?: string; digest: string; annotations?: Record<string, string>; platform?: { os?: string; architecture?: string } };
  const out = new Map<string, ToLoad>();
  const visit = (d: Desc, tag: string | undefined) => {
    const json = readJson<{ mediaType?: string; manifests?: Desc[]; config?: { digest: string }; layers?: { digest: string; mediaType?: string }[] }>(inside(work, blobRel(d.digest)));
    if (Array.isArray(json.manifests)) {
      const p = hostPlatform();
      const pick = json.manifests.find((m) => m.platform?.os === p.os && m.platform?.architecture === p.architecture) ?? json.manifests[0];
      if (pick) visit(pick, tag);
      return;
    }
    if (!json.config || !json.layers) throw new DnsnetError('invalid', `load: ${d.digest} is not an image manifest`);
    const entry = out.get(json.config.digest) ?? {
      config: inside(work, blobRel(json.config.digest)),
      layers: json.layers.map((l) => ({ file: inside(work, blobRel(l.digest)), ...(l.mediaType ? { mediaType: l.mediaType } : {}) })),
      tags: [],
    };
    if (tag && !entry.tags.includes(tag)) entry.tags.push(tag);
    out.set(json.config.digest, entry);
  };
  for (const d of readJson<{ manifests?: Desc[] }>(path.join(work, 'index.json')).manifests ?? []) {
    const name = d.annotations?.[NAME_ANNOTATION];
    visit(d, name ? familiarRef(parseImageRef(name)) : undefined);
  }
  return [...out.values()];
}

/** Docker's manifest.json: [{ Config, RepoTags, Layers }], paths inside the archive. */
function readDockerArchive(work: string): ToLoad[] {
  const entries = readJson<{ Config: string; RepoTags?: string[] | null; Layers: string[] }[]>(path.join(work, 'manifest.json'));
  return entries.map((m) => ({
    config: inside(work, m.Config),
    layers: m.Layers.map((l) => ({ file: inside(work, l) })),
    tags: (m.RepoTags ?? []).map((t) => familiarRef(parseImageRef(t))),
  }));
}

/** Blobs into the store (by their digest), layers extracted and checked against the config's diff_ids. */
async function loadOne(store: ImageStore, w: ToLoad): Promise<ImageRecord> {
  const configBytes = fs.readFileSync(w.config);
  const id = sha256(configBytes);
  const cfg = JSON.parse(configBytes.toString('utf8')) as ImageConfigBlob;
  const diffIds = cfg.rootfs?.diff_ids ?? [];
  if (diffIds.length !== w.layers.length) throw new DnsnetError('invalid', `load: image ${id.slice(7, 19)}: its config names ${diffIds.length} layers, the archive ${w.layers.length}`);
  if (!store.hasBlob(id)) fs.copyFileSync(w.config, store.blobPath(id));
  const layers: ImageLayer[] = [];
  for (const [i, l] of w.layers.entries()) {
    const digest = await sha256File(l.file);
    const mediaType = l.mediaType ?? (isGzip(l.file) ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar');
    layerCompression(mediaType);
    if (!store.hasBlob(digest)) fs.copyFileSync(l.file, store.blobPath(digest));
    if (!fs.existsSync(store.layerDir(digest))) await store.extractLayer(digest, mediaType, diffIds[i]);
    layers.push({ digest, mediaType, size: fs.statSync(l.file).size, diffId: diffIds[i] ?? '' });
  }
  return store.record(id, cfg, layers, hostPlatform().architecture);
}
