// Image references (distribution/reference's rules), platform choice, whiteout sorting and sizes (pure).
import { describe, expect, it } from 'vitest';
import { humanSize, pullHeader, pullStep } from '../../src/cli/output.js';
import { credentialsFor } from '../../src/images/auth.js';
import { classifyEntry, layerCompression } from '../../src/images/layers.js';
import { choosePlatform } from '../../src/images/pull.js';
import { familiarRef, parseImageRef, registryEndpoint } from '../../src/images/reference.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseImageRef', () => {
  it.each<[string, object, string]>([
    ['busybox', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }, 'busybox:latest'],
    ['busybox:1.36', { domain: 'docker.io', path: 'library/busybox', tag: '1.36' }, 'busybox:1.36'],
    ['library/busybox', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }, 'busybox:latest'],
    ['docker.io/library/busybox', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }, 'busybox:latest'],
    ['user/app', { domain: 'docker.io', path: 'user/app', tag: 'latest' }, 'user/app:latest'],
    ['localhost/app', { domain: 'localhost', path: 'app', tag: 'latest' }, 'localhost/app:latest'],
    ['localhost:5000/team/app:v1', { domain: 'localhost:5000', path: 'team/app', tag: 'v1' }, 'localhost:5000/team/app:v1'],
    ['127.0.0.1:5000/app', { domain: '127.0.0.1:5000', path: 'app', tag: 'latest' }, '127.0.0.1:5000/app:latest'],
    ['ghcr.io/o/r/deep/name:tag_1.2-x', { domain: 'ghcr.io', path: 'o/r/deep/name', tag: 'tag_1.2-x' }, 'ghcr.io/o/r/deep/name:tag_1.2-x'],
    [`app@${D}`, { domain: 'docker.io', path: 'library/app', digest: D }, `app@${D}`],
    [`app:v1@${D}`, { domain: 'docker.io', path: 'library/app', tag: 'v1', digest: D }, `app:v1@${D}`],
    ['a__b/c-d.e', { domain: 'docker.io', path: 'a__b/c-d.e', tag: 'latest' }, 'a__b/c-d.e:latest'],
  ])('%s', (raw, want, familiar) => {
    const ref = parseImageRef(raw);
    expect(ref).toEqual(want);
    expect(familiarRef(ref)).toBe(familiar);
  });

  it.each(['', 'UPPER', 'a//b', 'app:', 'app:-x', '-app', 'app@sha256:abc', 'app@md5:' + 'a'.repeat(32), 'a b', 'app:' + 'x'.repeat(129)])('refuses %j', (raw) => {
    expect(() => parseImageRef(raw)).toThrow(/invalid reference format/);
  });

  it('talks to Docker Hub through registry-1.docker.io', () => {
    expect(registryEndpoint('docker.io')).toBe('registry-1.docker.io');
    expect(registryEndpoint('localhost:5000')).toBe('localhost:5000');
  });
});

describe('choosePlatform', () => {
  const entries = [
    { digest: 'arm', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    { digest: 'arm64', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    { digest: 'amd64', platform: { os: 'linux', architecture: 'amd64' } },
    { digest: 'win', platform: { os: 'windows', architecture: 'amd64' } },
  ];
  it('takes the entry of this OS and architecture (and variant)', () => {
    expect(choosePlatform(entries, { os: 'linux', architecture: 'amd64' })?.digest).toBe('amd64');
    expect(choosePlatform(entries, { os: 'linux', architecture: 'arm64', variant: 'v8' })?.digest).toBe('arm64');
    expect(choosePlatform(entries, { os: 'linux', architecture: 's390x' })).toBeUndefined();
  });
});

describe('layers', () => {
  it('sorts whiteouts and opaque markers from files', () => {
    const w = { removed: [] as string[], opaque: [] as string[], absoluteLinks: [] };
    expect(classifyEntry('etc/passwd', w)).toBe(true);
    expect(classifyEntry('./etc/.wh.old', w)).toBe(false);
    expect(classifyEntry('.wh.top', w)).toBe(false);
    expect(classifyEntry('opt/dir/.wh..wh..opq', w)).toBe(false);
    expect(classifyEntry('/.wh..wh..opq', w)).toBe(false);
    expect(w).toEqual({ removed: ['etc/old', 'top'], opaque: ['opt/dir', ''], absoluteLinks: [] });
    expect(() => classifyEntry('../.wh.x', w)).toThrow(/a whiteout outside the layer/);
  });

  it('reads gzip and plain tar layers, and refuses zstd with a clear line', () => {
    expect(layerCompression('application/vnd.oci.image.layer.v1.tar+gzip')).toBe('gzip');
    expect(layerCompression('application/vnd.docker.image.rootfs.diff.tar.gzip')).toBe('gzip');
    expect(layerCompression('application/vnd.oci.image.layer.v1.tar')).toBe('none');
    expect(() => layerCompression('application/vnd.oci.image.layer.v1.tar+zstd')).toThrow(/zstd layers cannot be read by Node/);
  });

  it('sizes as docker images prints them', () => {
    expect([humanSize(0), humanSize(999), humanSize(4_262_912), humanSize(1_500_000_000), humanSize(12_345)]).toEqual(['0B', '999B', '4.26MB', '1.5GB', '12.3kB']);
  });
});

describe('credentialsFor (a Docker-style config file)', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const file = JSON.stringify({
    auths: {
      'https://index.docker.io/v1/': { auth: b64('hub:pw') },
      'localhost:5000': { auth: b64('local:pw') },
      'https://ghcr.io': { username: 'gh', password: 'tok' },
    },
  });
  it('finds Docker Hub under its old key, a registry by host:port or by URL, and nothing for others', () => {
    expect(credentialsFor(file, 'docker.io')).toBe('hub:pw');
    expect(credentialsFor(file, 'localhost:5000')).toBe('local:pw');
    expect(credentialsFor(file, 'ghcr.io')).toBe('gh:tok');
    expect(credentialsFor(file, 'quay.io')).toBeUndefined();
    expect(credentialsFor('not json', 'docker.io')).toBeUndefined();
  });
});

describe('pull output', () => {
  it("prints Docker's header and steps; a download as a bar", () => {
    expect(pullHeader('busybox')).toBe('Using default tag: latest\nlatest: Pulling from library/busybox\n');
    expect(pullHeader('localhost:5000/app:v1')).toBe('v1: Pulling from localhost:5000/app\n');
    expect(pullStep({ id: 'abc123def456', status: 'Pull complete' })).toBe('abc123def456: Pull complete');
    expect(pullStep({ id: 'abc123def456', status: 'Downloading', current: 1_000_000, total: 2_000_000 })).toBe(
      `abc123def456: Downloading [${'='.repeat(19)}>${' '.repeat(20)}] 1MB/2MB`,
    );
  });
});
