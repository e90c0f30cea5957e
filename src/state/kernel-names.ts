// Every kernel object name a state root claims, made here and nowhere else (the tests' helpers import it too).
// Names are global to the host and several roots live at once (test workers, a user's real daemon): no two
// roots may ever claim the same device, namespace or nftables table name.
import { createRequire } from 'node:module';

export const DEFAULT_STATE_ROOT = '/var/lib/dnsnet';

// node:crypto is loaded when first needed: every `dnsnet` command imports this file (through state/paths.ts),
// few hash a root.
const load = createRequire(import.meta.url);
function sha256hex(text: string): string {
  return (load('node:crypto') as typeof import('node:crypto')).createHash('sha256').update(text).digest('hex');
}

/** The default network's bridge: `dnsnet0` for the default root; another root gets its own name. */
export function defaultBridgeFor(stateRoot: string): string {
  if (stateRoot === DEFAULT_STATE_ROOT) return 'dnsnet0';
  return `dnsnet${sha256hex(stateRoot).slice(0, 8)}`;
}

/** A user network's bridge: `dn-` + the first 12 hex of its ID (15 characters, IFNAMSIZ - 1). */
export function bridgeName(networkId: string): string {
  return `dn-${networkId.slice(0, 12)}`;
}

/** The host end of a container's veth on a network: `vdn` + 12 hex of a digest of both IDs (15 characters). */
export function vethName(containerId: string, networkId: string): string {
  return `vdn${sha256hex(`${containerId}\0${networkId}`).slice(0, 12)}`;
}

/** A container's network namespace, by name (`ip netns`) and by path. */
export function netnsName(containerId: string): string {
  return `dnsnet-${containerId.slice(0, 12)}`;
}

/** Whether a netns name is one of a container's (of some root: which one, the records or the owner tag tell). */
export function isContainerNetns(name: string): boolean {
  return name.startsWith('dnsnet-');
}

/** Where `ip netns` keeps named network namespaces (iproute2's convention). */
export const NETNS_DIR = '/run/netns';

export function netnsPath(containerId: string): string {
  return `${NETNS_DIR}/${netnsName(containerId)}`;
}

/**
 * The nftables table (family inet) of a state root: `dnsnet` for the default root, else `dnsnet_` + 8 hex
 * of sha256(root), so that two roots never share, and so never replace, each other's table.
 */
export function tableName(stateRoot: string): string {
  if (stateRoot === DEFAULT_STATE_ROOT) return 'dnsnet';
  return `dnsnet_${sha256hex(stateRoot).slice(0, 8)}`;
}

/** Written as the alias of every link a root makes: tells its orphans from another root's objects. */
export function ownerTag(stateRoot: string): string {
  return `dnsnet:${sha256hex(stateRoot).slice(0, 8)}`;
}
