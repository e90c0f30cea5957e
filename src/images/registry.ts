// A client of the OCI distribution API (what Docker Hub, docker-registry, ghcr.io and quay.io speak):
// manifests and blobs, Bearer tokens from the realm a 401 names (Docker's token flow, with basic credentials
// when the user has some), plain HTTP only for registries the user allows. Node's own fetch; nothing else.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DnsnetError } from '../errors.js';
import { registryEndpoint, type ImageRef } from './reference.js';

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest].join(', ');
const TIMEOUT_MS = 30_000;

export interface RegistryOptions {
  /** Plain HTTP (`--tls-verify=false`, or the registry is in DNSNET_INSECURE_REGISTRIES). */
  insecure: boolean;
  /** `user:password` for this registry (from a Docker-style config file), if any. */
  basicAuth?: string | undefined;
}

/** A manifest as fetched: its bytes (what its digest is of), its media type, parsed. */
export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
  json: Record<string, unknown>;
}

export function sha256(bytes: Buffer | string): string {
  return `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;
}

/** The digest of a file, read as a stream (a layer may be large). */
export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

export class Registry {
  private readonly base: string;
  private token: string | undefined;

  constructor(
    private readonly ref: ImageRef,
    private readonly opts: RegistryOptions,
  ) {
    this.base = `${opts.insecure ? 'http' : 'https'}://${registryEndpoint(ref.domain)}/v2/${ref.path}`;
  }

  /** A manifest (or index) by tag or digest. A digest asked for is checked against the bytes. */
  async manifest(reference: string): Promise<FetchedManifest> {
    const res = await this.get(`${this.base}/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    const bytes = Buffer.from(await res.arrayBuffer());
    const digest = sha256(bytes);
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new DnsnetError('invalid', `manifest ${reference}: the registry sent content whose digest is ${digest}`);
    }
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new DnsnetError('invalid', `manifest ${reference}: not JSON`);
    }
    const mediaType = (typeof json.mediaType === 'string' ? json.mediaType : undefined) ?? res.headers.get('content-type')?.split(';')[0] ?? '';
    return { bytes, mediaType, digest, json };
  }

  /** A blob into `file`, checked against its digest while it streams; a mismatch leaves no file. */
  async blobTo(digest: string, file: string, onBytes?: (n: number) => void): Promise<number> {
    const res = await this.get(`${this.base}/blobs/${digest}`, {});
    if (!res.body) throw new DnsnetError('kernel', `blob ${digest}: empty answer`);
    const hash = crypto.createHash('sha256');
    let size = 0;
    const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    try {
      await pipeline(
        Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>),
        new Transform({
          transform(chunk: Buffer, _enc, done) {
            hash.update(chunk);
            size += chunk.length;
            onBytes?.(chunk.length);
            done(null, chunk);
          },
        }),
        fs.createWriteStream(tmp, { mode: 0o600 }),
      );
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== digest) throw new DnsnetError('invalid', `blob ${digest}: digest mismatch: the registry sent content whose digest is ${got}`);
      fs.renameSync(tmp, file);
      return size;
    } catch (error) {
      fs.rmSync(tmp, { force: true });
      throw error instanceof DnsnetError ? error : new DnsnetError('kernel', `blob ${digest}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** GET with the token dance: a 401 names the realm that hands out a token for this repository. */
  private async get(url: string, headers: Record<string, string>): Promise<Response> {
    let res = await this.fetch(url, headers);
    if (res.status === 401 && !this.token) {
      await this.authenticate(res.headers.get('www-authenticate') ?? '');
      res = await this.fetch(url, headers);
    }
    if (res.ok) return res;
    const body = await res.text().catch(() => '');
    const detail = registryError(body);
    if (res.status === 401 || res.status === 403) throw new DnsnetError('invalid', `${this.ref.domain}/${this.ref.path}: pull access denied${detail ? ` (${detail})` : ''}: the repository does not exist or needs credentials`);
    if (res.status === 404) throw new DnsnetError('not-found', `${this.ref.domain}/${this.ref.path}: not found${detail ? ` (${detail})` : ''}`);
    throw new DnsnetError('kernel', `${url}: HTTP ${res.status}${detail ? ` (${detail})` : ''}`);
  }

  private async fetch(url: string, headers: Record<string, string>): Promise<Response> {
    const h: Record<string, string> = { ...headers };
    if (this.token) h.authorization = `Bearer ${this.token}`;
    else if (this.opts.basicAuth) h.authorization = `Basic ${Buffer.from(this.opts.basicAuth).toString('base64')}`;
    try {
      return await fetch(url, { headers: h, redirect: 'follow', signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      const hint = !this.opts.insecure && /SSL|TLS|EPROTO|wrong version/i.test(String(cause?.message ?? why)) ? ' (a plain-HTTP registry: --tls-verify=false, or DNSNET_INSECURE_REGISTRIES)' : '';
      throw new DnsnetError('kernel', `${new URL(url).host}: ${why}${hint}`, { cause: error });
    }
  }

  /** `WWW-Authenticate: Bearer realm="...",service="...",scope="..."` -> a token (Docker's token auth). */
  private async authenticate(header: string): Promise<void> {
    const m = /^Bearer\s+(.*)$/i.exec(header.trim());
    if (!m) {
      if (/^Basic/i.test(header)) throw new DnsnetError('invalid', `${this.ref.domain}: the registry wants credentials (a Docker-style config file with an auth for it)`);
      throw new DnsnetError('invalid', `${this.ref.domain}: unauthorized, and no token realm given`);
    }
    const params = new Map<string, string>();
    for (const p of (m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)) params.set(p[1]!.toLowerCase(), p[2]!);
    const realm = params.get('realm');
    if (!realm) throw new DnsnetError('invalid', `${this.ref.domain}: a Bearer challenge without a realm`);
    const url = new URL(realm);
    if (params.has('service')) url.searchParams.set('service', params.get('service')!);
    url.searchParams.set('scope', params.get('scope') ?? `repository:${this.ref.path}:pull`);
    const headers: Record<string, string> = {};
    if (this.opts.basicAuth) headers.authorization = `Basic ${Buffer.from(this.opts.basicAuth).toString('base64')}`;
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (error) {
      throw new DnsnetError('kernel', `token from ${url.host}: ${(error as Error).message}`, { cause: error });
    }
    if (!res.ok) throw new DnsnetError('invalid', `token from ${url.host}: HTTP ${res.status}`);
    const body = (await res.json().catch(() => ({}))) as { token?: string; access_token?: string };
    this.token = body.token ?? body.access_token;
    if (!this.token) throw new DnsnetError('invalid', `token from ${url.host}: no token in the answer`);
  }
}

/** The first error of a registry's JSON error body (`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}`). */
function registryError(body: string): string {
  try {
    const e = (JSON.parse(body) as { errors?: { code?: string; message?: string }[] }).errors?.[0];
    return e ? [e.code, e.message].filter(Boolean).join(': ') : '';
  } catch {
    return '';
  }
}
