// Kernel object names of dnsnet networks: bridge devices and the nftables table of a state root.
import { createHash } from 'node:crypto';

/** A user network's bridge: `dn-` + the first 12 hex of its ID (15 characters, IFNAMSIZ - 1). */
export function bridgeName(networkId: string): string {
  return `dn-${networkId.slice(0, 12)}`;
}

/**
 * The nftables table (family inet) of a state root: `dnsnet` for the default root
 * (/var/lib/dnsnet), else `dnsnet_` + 8 hex of sha256(root), so that two roots (test workers, a
 * user's real daemon) never share, and so never replace, each other's table.
 */
export function tableName(stateRoot: string, isDefaultRoot: boolean): string {
  if (isDefaultRoot) return 'dnsnet';
  return `dnsnet_${createHash('sha256').update(stateRoot).digest('hex').slice(0, 8)}`;
}
