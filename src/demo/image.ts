// A small image for the demo, made offline from Debian's busybox-static (/bin/busybox): one layer with
// busybox and its applets, a web page, /etc/passwd; written as a Docker archive that `dnsnet load` reads.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { c as tarCreate } from 'tar';

export const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'ls', 'cat', 'echo', 'hostname', 'ping', 'nslookup', 'wget', 'httpd', 'sleep'];

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** Write `dir/demo-image.tar` (tagged `tag`) and return its path. */
export async function buildDemoImage(dir: string, tag: string): Promise<string> {
  const root = path.join(dir, 'image-root');
  fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
  fs.copyFileSync(BUSYBOX, path.join(root, 'bin', 'busybox'));
  fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
  for (const a of APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', a));
  fs.mkdirSync(path.join(root, 'etc'));
  fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.mkdirSync(path.join(root, 'www'));
  fs.writeFileSync(path.join(root, 'www', 'index.html'), 'hello from an image container\n');
  const layer = path.join(dir, 'layer.tar');
  await tarCreate({ cwd: root, file: layer, portable: true }, ['bin', 'etc', 'www']);
  const layerBytes = fs.readFileSync(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      os: 'linux',
      created: new Date().toISOString(),
      config: { Env: ['PATH=/bin'], Cmd: ['httpd', '-f', '-p', '80', '-h', '/www'], ExposedPorts: { '80/tcp': {} } },
      rootfs: { type: 'layers', diff_ids: [`sha256:${sha(layerBytes)}`] },
    }),
  );
  const archive = path.join(dir, 'archive');
  fs.mkdirSync(path.join(archive, 'layer'), { recursive: true });
  fs.renameSync(layer, path.join(archive, 'layer', 'layer.tar'));
  fs.writeFileSync(path.join(archive, `${sha(config)}.json`), config);
  fs.writeFileSync(path.join(archive, 'manifest.json'), JSON.stringify([{ Config: `${sha(config)}.json`, RepoTags: [tag], Layers: ['layer/layer.tar'] }]));
  const file = path.join(dir, 'demo-image.tar');
  await tarCreate({ cwd: archive, file, portable: true }, ['manifest.json', `${sha(config)}.json`, 'layer']);
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(archive, { recursive: true, force: true });
  return file;
}
