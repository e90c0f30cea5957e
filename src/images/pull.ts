// `dnsnet pull`: reference -> manifest (an index resolved to this host's platform) -> config -> layers,
// every blob checked against its digest, every layer against its diff_id, layers shared between images
// (a blob already here is not fetched again, a layer already extracted not extracted again).
import fs from 'node:fs';
import { DnsnetError } from '../errors.js';
import { layerCompression } from './layers.js';
import { familiarName, familiarRef, parseImageRef } from './reference.js';
import { MEDIA, Registry, type FetchedManifest, type RegistryOptions } from './registry.js';
import type { ImageConfigBlob, ImageLayer, ImageRecord, ImageStore } from './store.js';

/** This host's platform as OCI names it. */
export function hostPlatform(): { os: string; architecture: string; variant?: string } {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch, ...(process.arch === 'arm64' ? { variant: 'v8' } : {}) };
}

interface IndexEntry {
  digest: string;
  mediaType?: string;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** The entry of an index for this platform (an arm64 variant may be absent or v8). Pure. */
export function choosePlatform(entries: IndexEntry[], want = hostPlatform()): IndexEntry | undefined {
  const fits = entries.filter((e) => e.platform?.os === want.os && e.platform?.architecture === want.architecture);
  return fits.find((e) => (e.platform?.variant ?? want.variant) === want.variant) ?? fits[0];
}

export interface PullResult {
  image: ImageRecord;
  /** The reference as pulled, familiar (`busybox:latest`). */
  ref: string;
  /** The manifest's digest (what `pull` prints as `Digest:`). */
  digest: string;
  /** Layers fetched now, and those that were already here. */
  fetched: number;
  present: number;
}

/** A step of a pull, as Docker's progress stream names them (`id`: a layer's 12 hex, or '' for the image). */
export interface PullEvent {
  id: string;
  status: string;
  current?: number;
  total?: number;
}

export type Progress = (event: PullEvent) => void;

export async function pullImage(store: ImageStore, raw: string, opts: RegistryOptions, progress: Progress = () => undefined): Promise<PullResult> {
  const ref = parseImageRef(raw);
  const registry = new Registry(ref, opts);
  let manifest = await registry.manifest(ref.digest ?? ref.tag ?? 'latest');
  if (manifest.mediaType === MEDIA.ociIndex || manifest.mediaType === MEDIA.dockerList || Array.isArray(manifest.json.manifests)) {
    const entries = (manifest.json.manifests ?? []) as IndexEntry[];
    const pick = choosePlatform(entries);
    if (!pick) {
      const have = entries.map((e) => `${e.platform?.os}/${e.platform?.architecture}${e.platform?.variant ? `/${e.platform.variant}` : ''}`).join(', ');
      const p = hostPlatform();
      throw new DnsnetError('not-found', `${familiarRef(ref)}: no image for ${p.os}/${p.architecture} (the index has ${have || 'none'})`);
    }
    progress({ id: '', status: `Resolved ${familiarRef(ref)} to ${pick.digest} for ${pick.platform?.os}/${pick.platform?.architecture}` });
    manifest = await registry.manifest(pick.digest);
  }
  const { config, layers } = readManifest(manifest);
  const listDigest = ref.digest ?? manifest.digest;

  // The config, then each layer: fetched unless already here, extracted unless already extracted.
  const configFile = store.blobPath(config.digest);
  if (!store.hasBlob(config.digest)) await registry.blobTo(config.digest, configFile);
  const cfg = JSON.parse(fs.readFileSync(configFile, 'utf8')) as ImageConfigBlob;
  const diffIds = cfg.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layers.length) throw new DnsnetError('invalid', `${familiarRef(ref)}: the config names ${diffIds.length} layers, the manifest ${layers.length}`);
  let fetched = 0;
  let present = 0;
  const out: ImageLayer[] = [];
  for (const [i, l] of layers.entries()) {
    layerCompression(l.mediaType); // zstd refused before anything is fetched
    const short = l.digest.slice(7, 19);
    const dir = store.layerDir(l.digest);
    if (store.hasBlob(l.digest) && fs.existsSync(dir)) {
      present++;
      progress({ id: short, status: 'Already exists' });
    } else {
      if (!store.hasBlob(l.digest)) {
        let current = 0;
        progress({ id: short, status: 'Downloading', current, total: l.size });
        await registry.blobTo(l.digest, store.blobPath(l.digest), (n) => {
          current += n;
          progress({ id: short, status: 'Downloading', current, total: l.size });
        });
        progress({ id: short, status: 'Download complete' });
      }
      progress({ id: short, status: 'Extracting' });
      await store.extractLayer(l.digest, l.mediaType, diffIds[i]);
      fetched++;
      progress({ id: short, status: 'Pull complete' });
    }
    out.push({ digest: l.digest, mediaType: l.mediaType, size: l.size, diffId: diffIds[i] ?? '' });
  }
  const image = store.record(config.digest, cfg, out, hostPlatform().architecture);
  const repoDigest = `${familiarName(ref)}@${listDigest}`;
  if (!image.repoDigests.includes(repoDigest)) image.repoDigests.push(repoDigest);
  // A tag pulled is (re)pointed at this image; a pull by digest tags nothing, as in Docker.
  await store.save(image, ref.digest === undefined ? familiarRef(ref) : undefined);
  return { image, ref: familiarRef(ref), digest: listDigest, fetched, present };
}

function readManifest(m: FetchedManifest): { config: { digest: string }; layers: { digest: string; mediaType: string; size: number }[] } {
  const j = m.json as { schemaVersion?: number; config?: { digest?: string }; layers?: { digest?: string; mediaType?: string; size?: number }[] };
  if (j.schemaVersion !== 2 || !j.config?.digest || !Array.isArray(j.layers)) {
    throw new DnsnetError('invalid', `manifest ${m.digest}: not a Docker v2 or OCI image manifest (media type ${m.mediaType || 'none'})`);
  }
  const layers = j.layers.map((l) => {
    if (!l.digest) throw new DnsnetError('invalid', `manifest ${m.digest}: a layer without a digest`);
    return { digest: l.digest, mediaType: l.mediaType ?? '', size: l.size ?? 0 };
  });
  return { config: { digest: j.config.digest }, layers };
}

