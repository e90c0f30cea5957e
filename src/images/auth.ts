// Registry credentials from a Docker-style config file (`docker login` writes it): `auths` maps a registry
// to `auth`, base64 of `user:password`. Docker Hub's key is `https://index.docker.io/v1/`. Which file:
// DNSNET_REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json (of the daemon's
// environment, which the CLI that starts it passes on). Credential helpers (credsStore) are not read.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DOCKER_HUB } from './reference.js';

export function authFile(env: NodeJS.ProcessEnv): string {
  if (env.DNSNET_REGISTRY_AUTH_FILE) return env.DNSNET_REGISTRY_AUTH_FILE;
  if (env.DOCKER_CONFIG) return path.join(env.DOCKER_CONFIG, 'config.json');
  return path.join(env.HOME || os.homedir(), '.docker', 'config.json');
}

/** `user:password` for `domain`, or undefined. Pure over the file's text. */
export function credentialsFor(configText: string, domain: string): string | undefined {
  let auths: Record<string, { auth?: string; username?: string; password?: string }>;
  try {
    auths = (JSON.parse(configText) as { auths?: typeof auths }).auths ?? {};
  } catch {
    return undefined;
  }
  const keys = domain === DOCKER_HUB ? ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'] : [domain, `https://${domain}`, `http://${domain}`];
  for (const key of Object.keys(auths)) {
    const bare = key.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    if (!keys.includes(key) && !keys.includes(bare)) continue;
    const a = auths[key]!;
    if (a.auth) return Buffer.from(a.auth, 'base64').toString('utf8');
    if (a.username !== undefined && a.password !== undefined) return `${a.username}:${a.password}`;
  }
  return undefined;
}

export function readCredentials(env: NodeJS.ProcessEnv, domain: string): string | undefined {
  try {
    return credentialsFor(fs.readFileSync(authFile(env), 'utf8'), domain);
  } catch {
    return undefined;
  }
}
