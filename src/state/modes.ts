// A container's network mode, from its record alone: where its network namespace is. Docker's modes:
// a network of its own (bridge networks, `none`), the host's (`host`), or another container's
// (`container:NAME|ID`). The supervisor and reconcile read this without the network records.
import type { ContainerRecord } from './types.js';

export const HOST_NETWORK = 'host';
export const NONE_NETWORK = 'none';
export const CONTAINER_MODE_PREFIX = 'container:';

/** `own`: a netns made for it; `host`: the host's netns; `joined`: the netns of container `netContainer`. */
export type NetnsKind = 'own' | 'host' | 'joined';

export function netnsKind(c: Pick<ContainerRecord, 'network' | 'netContainer'>): NetnsKind {
  if (c.netContainer !== undefined) return 'joined';
  return c.network === HOST_NETWORK ? 'host' : 'own';
}

/** `--network container:X` -> X; anything else -> undefined. */
export function containerModeTarget(network: string): string | undefined {
  return network.startsWith(CONTAINER_MODE_PREFIX) ? network.slice(CONTAINER_MODE_PREFIX.length) : undefined;
}
