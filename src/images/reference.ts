// Image references as Docker reads them (pure): `busybox`, `busybox:1.36`, `library/busybox`,
// `registry.example:5000/team/app:v1`, `app@sha256:...`. The rules are distribution/reference's: a first
// component with a dot or a colon, or `localhost`, is the registry; otherwise Docker Hub, where a
// one-component name lives under `library/`; no tag and no digest means `latest`.
import { DnsnetError } from '../errors.js';

export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's registry API answers. */
export const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';

export interface ImageRef {
  /** The registry: `docker.io`, `localhost:5000`, `registry.example`. */
  domain: string;
  /** The repository path in it: `library/busybox`, `team/app`. */
  path: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\d{1,5})?$|^\[[0-9a-fA-F:.]+\](?::\d{1,5})?$/;

function invalid(raw: string, why: string): DnsnetError {
  return new DnsnetError('invalid', `invalid reference format "${raw}": ${why}`);
}

export function parseImageRef(raw: string): ImageRef {
  if (raw === '' || raw.length > 255 + 128 + 72) throw invalid(raw, 'empty or too long');
  let rest = raw;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(raw, 'a digest is sha256: and 64 lowercase hex digits');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(raw, `invalid tag "${tag}"`);
  }
  const parts = rest.split('/');
  let domain = DOCKER_HUB;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))) {
    domain = first;
    parts.shift();
    if (!DOMAIN.test(domain)) throw invalid(raw, `invalid registry "${domain}"`);
  }
  if (parts.length === 0 || parts.some((p) => !COMPONENT.test(p))) {
    throw invalid(raw, 'repository names are lowercase letters, digits and separators (. _ __ -), split by /');
  }
  if (domain === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const path = parts.join('/');
  if (domain.length + 1 + path.length > 255) throw invalid(raw, 'the repository name is longer than 255 characters');
  return { domain, path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}), ...(tag === undefined && digest === undefined ? { tag: 'latest' } : {}) };
}

/** `docker.io/library/busybox` -> `busybox`; others in full (Docker's familiar form). */
export function familiarName(ref: Pick<ImageRef, 'domain' | 'path'>): string {
  if (ref.domain !== DOCKER_HUB) return `${ref.domain}/${ref.path}`;
  return ref.path.startsWith('library/') ? ref.path.slice('library/'.length) : ref.path;
}

/** `busybox:latest`, `localhost:5000/app@sha256:...`: the familiar name with its tag or digest. */
export function familiarRef(ref: ImageRef): string {
  return `${familiarName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** The registry's API host for a domain. */
export function registryEndpoint(domain: string): string {
  return domain === DOCKER_HUB ? DOCKER_HUB_ENDPOINT : domain;
}
