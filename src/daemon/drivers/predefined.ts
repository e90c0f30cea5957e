// The pre-defined networks `host` (driver `host`) and `none` (driver `null`), as Docker lists them: one of
// each, made at start-up, never created, removed or pruned. They have no device, no addresses and no
// endpoints: a `host` container runs in the host's netns, a `none` container in a netns with only `lo`.
import { DnsnetError } from '../../errors.js';
import { HOST_NETWORK, NONE_NETWORK } from '../../state/modes.js';
import { isModeNetwork, SCHEMA_VERSION, type NetworkRecord } from '../../state/types.js';
import { newId } from '../names.js';
import type { NetworkDriver } from './driver.js';

function predefinedDriver(name: 'host' | 'null', sandbox: 'own' | 'host', dns: 'legacy' | 'host'): NetworkDriver {
  const noEndpoint = (): never => {
    throw new DnsnetError('internal', `the ${name} driver has no endpoints`);
  };
  return {
    name,
    sandbox,
    endpoints: false,
    plan: () => Promise.reject(new DnsnetError('conflict', `only one instance of "${name}" network is allowed`)),
    create: () => Promise.resolve(),
    remove: () => Promise.resolve([]),
    exists: () => true,
    planEndpoint: noEndpoint,
    attachPlan: noEndpoint,
    join: () => Promise.resolve(),
    leave: () => Promise.resolve(),
    dnsMode: () => dns,
  };
}

/** `host`: the host's netns; its /etc/hosts and /etc/resolv.conf are copies of the host's, as Docker makes them. */
export const hostDriver = predefinedDriver('host', 'host', 'host');
/** `null` (the network `none`): its own netns with only `lo`; the default network's resolv.conf rule. */
export const nullDriver = predefinedDriver('null', 'own', 'legacy');

/** The records of `host` and `none` (made once per state root). */
export function predefinedNetwork(driver: 'host' | 'null'): NetworkRecord {
  return {
    schema: SCHEMA_VERSION,
    id: newId(),
    name: driver === 'host' ? HOST_NETWORK : NONE_NETWORK,
    created: new Date().toISOString(),
    driver,
    isDefault: false,
    internal: false,
    enableIPv6: false,
    mtu: 0,
    device: '',
    ipam: [],
    options: {},
  };
}

/** `bridge`, `host` and `none`: Docker's pre-defined networks (never created, removed or pruned). */
export function isPredefined(net: NetworkRecord): boolean {
  return net.isDefault || isModeNetwork(net);
}
