// The containers of the overlay networks, as every host sees them (issue 18; ../daemon/cluster.ts feeds the
// resolver and the VXLAN devices from it). Each host publishes its containers' endpoints
// (`<prefix>endpoints/<network id>/<container id>`: names, address, MAC, the host's underlay address) on
// its lease, so a dead host's endpoints disappear with it. Each host keeps a local copy of all of them: read
// once, then kept current by a watch from the revision it was read at, so a query never waits on etcd. When
// the store has compacted past the watch, the copy is read again and the differences are told.
import { Book } from './book.js';
import type { Etcd } from './etcd.js';

export interface OverlayEndpoint {
  network: string; // network id
  container: string; // container id
  name: string;
  /** Its hostname (Docker answers it too); absent in what older daemons wrote. */
  hostname?: string;
  aliases: string[];
  ip: string;
  mac: string;
  /** The underlay address of the host the container lives on (its VTEP). */
  host: string;
}

export type EndpointChange = { type: 'up'; endpoint: OverlayEndpoint } | { type: 'down'; endpoint: OverlayEndpoint };

const keyOf = (prefix: string, network: string, container: string): string => `${prefix}endpoints/${network}/${container}`;

/** Publish a container's endpoint on `lease` (the host's). */
export async function publishEndpoint(etcd: Etcd, prefix: string, e: OverlayEndpoint, lease: string): Promise<void> {
  await etcd.put(keyOf(prefix, e.network, e.container), JSON.stringify(e), lease);
}

export async function withdrawEndpoint(etcd: Etcd, prefix: string, network: string, container: string): Promise<void> {
  await etcd.delete(keyOf(prefix, network, container));
}

/** The local copy of every overlay endpoint, kept current; `onChange` hears each endpoint that came or went. */
export class EndpointBook extends Book<OverlayEndpoint> {
  constructor(etcd: Etcd, prefix: string, onChange: (changes: EndpointChange[]) => void) {
    super(etcd, `${prefix}endpoints/`, (changes) => onChange(changes.map((c) => ({ type: c.type, endpoint: c.value }))));
  }

  /** The endpoints of `network` now (a copy). */
  of(network: string): OverlayEndpoint[] {
    return this.all().filter((e) => e.network === network);
  }
}
