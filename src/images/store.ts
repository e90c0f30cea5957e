// The image store of a state root: verified blobs by digest, each layer extracted once (shared by every
// image that has it), and one record per image (its config, its layers, its tags). Files, under
// <state root>/images/:
//   blobs/sha256/<hex>        manifests, configs and compressed layers, each checked against its digest
//   layers/<hex>/             a layer's files (by its blob's digest), an overlayfs lower directory
//   records/<hex>.json        an image, by its ID (the digest of its config)
import fs from 'node:fs';
import path from 'node:path';
import { DnsnetError } from '../errors.js';
import { writeFileAtomic } from '../state/store.js';
import { extractLayer } from './layers.js';
import { familiarRef, parseImageRef } from './reference.js';

/** The part of an image's config that a container runs with (Docker's `Config`). */
export interface ImageRunConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
}

export interface ImageLayer {
  digest: string; // of the blob (compressed)
  mediaType: string;
  size: number; // of the blob
  diffId: string; // of the uncompressed tar
}

export interface ImageRecord {
  schema: 1;
  id: string; // sha256:<hex of the config blob>
  repoTags: string[]; // familiar: busybox:latest, localhost:5000/app:v1
  repoDigests: string[]; // familiar name @ manifest digest
  created: string; // from the config
  pulled: string;
  os: string;
  architecture: string;
  size: number; // uncompressed, all layers
  layers: ImageLayer[]; // bottom first
  config: ImageRunConfig;
}

const HEX = /^[a-f0-9]{64}$/;

/** What an image's config blob says (the parts dnsnet reads). */
export interface ImageConfigBlob {
  created?: string;
  os?: string;
  architecture?: string;
  config?: ImageRunConfig;
  rootfs?: { diff_ids?: string[] };
}

function hexOf(digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  if (!HEX.test(hex)) throw new DnsnetError('invalid', `invalid digest ${digest}`);
  return hex;
}

export class ImageStore {
  readonly dir: string;
  /** The records as last read: every `run` asks whether its first word is an image. The daemon is the only writer. */
  private cached: ImageRecord[] | undefined;

  constructor(stateRoot: string) {
    this.dir = path.join(stateRoot, 'images');
    for (const d of ['blobs/sha256', 'layers', 'records']) fs.mkdirSync(path.join(this.dir, d), { recursive: true, mode: 0o700 });
  }

  blobPath(digest: string): string {
    return path.join(this.dir, 'blobs', 'sha256', hexOf(digest));
  }

  layerDir(digest: string): string {
    return path.join(this.dir, 'layers', hexOf(digest));
  }

  /** Extract blob `digest` as its layer directory (beside it first, then renamed in: never half there). */
  async extractLayer(digest: string, mediaType: string, diffId: string | undefined): Promise<void> {
    const dir = this.layerDir(digest);
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    await extractLayer(this.blobPath(digest), mediaType, diffId, tmp);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  }

  hasBlob(digest: string): boolean {
    return fs.existsSync(this.blobPath(digest));
  }

  list(): ImageRecord[] {
    this.cached ??= this.read();
    return this.cached.map((r) => structuredClone(r));
  }

  private read(): ImageRecord[] {
    const out: ImageRecord[] = [];
    for (const f of fs.readdirSync(path.join(this.dir, 'records'))) {
      if (!f.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(fs.readFileSync(path.join(this.dir, 'records', f), 'utf8')) as ImageRecord);
      } catch {
        // a half-written record cannot be: writes are atomic; anything else is not ours to read
      }
    }
    return out.sort((a, b) => b.pulled.localeCompare(a.pulled));
  }

  /** By reference (`busybox`, `busybox:1.36`, `name@sha256:...`), by ID, or by a unique ID prefix (3+ hex). */
  find(ref: string): ImageRecord {
    const found = this.tryFind(ref);
    if (!found) throw new DnsnetError('not-found', `no such image: ${ref}`);
    return found;
  }

  /** `byPrefix: false`: a short ID prefix is not looked up (`run`'s first word may be a host command: `bc`, `dc`...). */
  tryFind(ref: string, opts: { byPrefix?: boolean } = {}): ImageRecord | undefined {
    const all = this.list();
    const id = ref.startsWith('sha256:') ? ref : `sha256:${ref}`;
    const byId = all.find((i) => i.id === id);
    if (byId) return byId;
    if ((opts.byPrefix ?? true) && /^[a-f0-9]{3,64}$/.test(ref)) {
      const hits = all.filter((i) => i.id.startsWith(`sha256:${ref}`));
      if (hits.length === 1) return hits[0];
      if (hits.length > 1) throw new DnsnetError('invalid', `image ${ref} is ambiguous: ${hits.length} IDs start with it`);
    }
    let name: string;
    try {
      name = familiarRef(parseImageRef(ref));
    } catch {
      return undefined;
    }
    return all.find((i) => i.repoTags.includes(name) || i.repoDigests.includes(name));
  }

  /** Save `img` and give it `tag` (taken from any other image that had it, as Docker moves a tag). */
  async save(img: ImageRecord, tag?: string): Promise<void> {
    if (tag !== undefined) {
      for (const other of this.list()) {
        if (other.id === img.id || !other.repoTags.includes(tag)) continue;
        other.repoTags = other.repoTags.filter((t) => t !== tag);
        await this.write(other);
      }
      if (!img.repoTags.includes(tag)) img.repoTags.push(tag);
    }
    await this.write(img);
  }

  /** Delete the record, then every blob and layer no image refers to any more. */
  async remove(img: ImageRecord): Promise<void> {
    fs.rmSync(path.join(this.dir, 'records', `${hexOf(img.id)}.json`), { force: true });
    this.cached = undefined;
    this.collect();
  }

  /** Blobs and layers of no image (what a failed pull or an rmi left) are removed. */
  collect(): void {
    const keep = new Set<string>();
    for (const i of this.list()) {
      keep.add(hexOf(i.id));
      for (const l of i.layers) keep.add(hexOf(l.digest));
    }
    for (const f of fs.readdirSync(path.join(this.dir, 'blobs', 'sha256'))) {
      if (!keep.has(f)) fs.rmSync(path.join(this.dir, 'blobs', 'sha256', f), { force: true });
    }
    for (const f of fs.readdirSync(path.join(this.dir, 'layers'))) {
      if (!keep.has(f)) fs.rmSync(path.join(this.dir, 'layers', f), { recursive: true, force: true });
    }
  }

  /** The bytes of the layers' files on disk (what `images` shows as SIZE: uncompressed). */
  diskSize(layers: { digest: string }[]): number {
    let total = 0;
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) total += fs.lstatSync(p).size;
      }
    };
    for (const l of layers) walk(this.layerDir(l.digest));
    return total;
  }

  /** The record of image `id` (its config blob's digest): the one here, or a new one without tags. */
  record(id: string, cfg: ImageConfigBlob, layers: ImageLayer[], defaultArch: string): ImageRecord {
    const existing = this.list().find((x) => x.id === id);
    if (existing) return existing;
    return {
      schema: 1,
      id,
      repoTags: [],
      repoDigests: [],
      created: cfg.created ?? new Date(0).toISOString(),
      pulled: new Date().toISOString(),
      os: cfg.os ?? 'linux',
      architecture: cfg.architecture ?? defaultArch,
      size: this.diskSize(layers),
      layers,
      config: cfg.config ?? {},
    };
  }

  /** Bytes on disk of every blob and extracted layer (what a removal frees is the difference). */
  usage(): number {
    let total = 0;
    for (const f of fs.readdirSync(path.join(this.dir, 'blobs', 'sha256'))) total += fs.statSync(path.join(this.dir, 'blobs', 'sha256', f)).size;
    return total + this.diskSize(fs.readdirSync(path.join(this.dir, 'layers')).filter((f) => HEX.test(f)).map((f) => ({ digest: `sha256:${f}` })));
  }

  /** A file of the image as its merged root shows it: the top-most layer that has it (a whiteout: absent). */
  readFile(layers: string[], rel: string): string | undefined {
    for (const digest of [...layers].reverse()) {
      const p = path.join(this.layerDir(digest), rel);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(p);
      } catch {
        continue;
      }
      if (st.isCharacterDevice()) return undefined; // removed by this layer
      return st.isFile() ? fs.readFileSync(p, 'utf8') : undefined;
    }
    return undefined;
  }

  private async write(img: ImageRecord): Promise<void> {
    await writeFileAtomic(path.join(this.dir, 'records', `${hexOf(img.id)}.json`), JSON.stringify(img, null, 2) + '\n');
    this.cached = undefined;
  }
}
