// Images for the engine: pulls (one at a time per state root: a pull and an rmi must not collect each
// other's blobs), listing, inspecting and removing, in Docker's JSON shapes. Which registries may be
// spoken to over plain HTTP: DNSNET_INSECURE_REGISTRIES (Docker's insecure-registries), or a pull's
// --tls-verify=false (Podman's flag).
import type { ImageInspectJson, ImageSummaryJson, LoadedJson, PrunedImagesJson, PullJson, PullSpec, RemovedImageJson } from '../api/types.js';
import { DnsnetError } from '../errors.js';
import { loadImages, saveImages } from '../images/archive.js';
import { readCredentials } from '../images/auth.js';
import { pullImage, type Progress } from '../images/pull.js';
import { parseImageRef } from '../images/reference.js';
import { ImageStore, type ImageRecord } from '../images/store.js';
import { Mutex } from './mutex.js';

export class Images {
  readonly store: ImageStore;
  private readonly lock = new Mutex();
  private readonly insecure: Set<string>;

  constructor(
    stateRoot: string,
    insecureRegistries: string | undefined,
    private readonly log: (line: string) => void,
  ) {
    this.store = new ImageStore(stateRoot);
    this.insecure = new Set((insecureRegistries ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  }

  /** A pull; `onEvent` sees each step as it happens (the CLI's progress display). */
  pull(spec: PullSpec, onEvent: Progress = () => undefined): Promise<PullJson> {
    return this.lock.run(async () => {
      const ref = parseImageRef(spec.ref);
      const progress: string[] = [];
      const insecure = spec.tlsVerify === false || this.insecure.has(ref.domain);
      const basicAuth = readCredentials(process.env, ref.domain);
      try {
        const r = await pullImage(this.store, spec.ref, { insecure, basicAuth }, (ev) => {
          if (ev.status !== 'Downloading') progress.push(ev.id ? `${ev.id}: ${ev.status}` : ev.status);
          onEvent(ev);
        });
        this.log(`[images] pulled ${r.ref} (${r.digest}): ${r.fetched} layer(s) fetched, ${r.present} already here`);
        return { ref: r.ref, id: r.image.id, digest: r.digest, fetched: r.fetched, present: r.present, progress };
      } finally {
        this.store.collect(); // what a failed pull fetched and no image refers to
      }
    });
  }

  /** `save`: the images (references or IDs) into a tar at `file` (an absolute path the CLI chose). */
  save(refs: string[], file: string): Promise<void> {
    return this.lock.run(async () => {
      if (!file.startsWith('/')) throw new DnsnetError('invalid', `save: "${file}" is not an absolute path`);
      const imgs = [...new Map(refs.map((r) => this.store.find(r)).map((i) => [i.id, i])).values()];
      await saveImages(this.store, imgs, file);
      this.log(`[images] saved ${refs.join(', ')} to ${file}`);
    });
  }

  /** `load`: the images of a tar (OCI layout or Docker archive). */
  load(file: string): Promise<LoadedJson> {
    return this.lock.run(async () => {
      if (!file.startsWith('/')) throw new DnsnetError('invalid', `load: "${file}" is not an absolute path`);
      const r = await loadImages(this.store, file);
      this.log(`[images] loaded ${r.tags.length > 0 ? r.tags.join(', ') : r.ids.join(', ')} from ${file}`);
      return r;
    });
  }

  /** `image prune`: images without a tag (with `all`: every image) that no container was made from. */
  prune(all: boolean, usedBy: (imageId: string) => string[]): Promise<PrunedImagesJson> {
    return this.lock.run(async () => {
      const out: PrunedImagesJson = { untagged: [], deleted: [], reclaimed: 0 };
      const before = this.store.usage();
      for (const img of this.store.list()) {
        if ((!all && img.repoTags.length > 0) || usedBy(img.id).length > 0) continue;
        out.untagged.push(...img.repoTags, ...img.repoDigests);
        out.deleted.push(img.id);
        await this.store.remove(img);
      }
      out.reclaimed = before - this.store.usage(); // layers another image still has are not freed
      if (out.deleted.length > 0) this.log(`[images] pruned ${out.deleted.length} image(s)`);
      return out;
    });
  }

  list(): ImageSummaryJson[] {
    return this.store.list().map(summaryJson);
  }

  inspect(ref: string): ImageInspectJson {
    return inspectJson(this.store.find(ref));
  }

  /**
   * `rmi REF`: untag REF; once an image has no tag left it is deleted, with the layers no other image has.
   * An image a container uses is refused (Docker's conflict), even with force while the container exists.
   */
  remove(ref: string, force: boolean, usedBy: (imageId: string) => string[]): Promise<RemovedImageJson> {
    return this.lock.run(async () => {
      const img = this.store.find(ref);
      const users = usedBy(img.id);
      const short = img.id.slice(7, 19);
      const byId = img.id === ref || img.id === `sha256:${ref}` || (/^[a-f0-9]{3,64}$/.test(ref) && img.id.startsWith(`sha256:${ref}`));
      if (users.length > 0 && (byId || img.repoTags.length <= 1)) {
        throw new DnsnetError('conflict', `conflict: unable to remove repository reference "${ref}" (must force) - container ${users[0]!.slice(0, 12)} is using its referenced image ${short}`);
      }
      if (byId && img.repoTags.length > 1 && !force) {
        throw new DnsnetError('conflict', `conflict: unable to delete ${short} (must be forced) - image is referenced in multiple repositories`);
      }
      const untagged: string[] = [];
      if (!byId) {
        const tag = img.repoTags.find((t) => tagMatches(t, ref));
        if (tag) {
          img.repoTags = img.repoTags.filter((t) => t !== tag);
          untagged.push(tag);
        }
        if (img.repoTags.length > 0) {
          await this.store.save(img);
          return { untagged, deleted: [] };
        }
      } else {
        untagged.push(...img.repoTags);
      }
      untagged.push(...img.repoDigests);
      await this.store.remove(img);
      return { untagged, deleted: [img.id] };
    });
  }
}

function tagMatches(tag: string, ref: string): boolean {
  try {
    const r = parseImageRef(ref);
    const t = parseImageRef(tag);
    return r.domain === t.domain && r.path === t.path && r.tag === t.tag;
  } catch {
    return false;
  }
}

function summaryJson(i: ImageRecord): ImageSummaryJson {
  return {
    Id: i.id,
    ParentId: '',
    RepoTags: i.repoTags,
    RepoDigests: i.repoDigests,
    Created: Math.floor(Date.parse(i.created) / 1000),
    Size: i.size,
    SharedSize: -1,
    VirtualSize: i.size,
    Labels: i.config.Labels ?? null,
    Containers: -1,
  };
}

function inspectJson(i: ImageRecord): ImageInspectJson {
  return {
    Id: i.id,
    RepoTags: i.repoTags,
    RepoDigests: i.repoDigests,
    Parent: '',
    Comment: '',
    Created: i.created,
    Os: i.os,
    Architecture: i.architecture,
    Size: i.size,
    VirtualSize: i.size,
    Config: { ...i.config },
    RootFS: { Type: 'layers', Layers: i.layers.map((l) => l.diffId) },
    Dnsnet: { Pulled: i.pulled, Layers: i.layers.map((l) => ({ Digest: l.digest, MediaType: l.mediaType, Size: l.size })) },
  };
}
