// The network drivers, by the name a network record carries.
import { DnsnetError } from '../../errors.js';
import type { NetworkRecord } from '../../state/types.js';
import { bridgeDriver } from './bridge.js';
import type { NetworkDriver } from './driver.js';
import { hostDriver, nullDriver } from './predefined.js';
import { overlayDriver, type OverlayCluster } from './overlay.js';

export type { DnsMode, EndpointRequest, NetworkDriver } from './driver.js';
export { DEFAULT_NETWORK, defaultNetworkSpec, firewallTable } from './bridge.js';
export { isPredefined, predefinedNetwork } from './predefined.js';
export { checkOverlaySpec, vxlanName, type OverlayCluster } from './overlay.js';

/** The cluster the overlay driver works with: one daemon per process, set when it joins one. */
let cluster: OverlayCluster | undefined;
export function useCluster(c: OverlayCluster | undefined): void {
  cluster = c;
}

const DRIVERS: Record<string, NetworkDriver> = { bridge: bridgeDriver, host: hostDriver, null: nullDriver, overlay: overlayDriver(() => cluster) };

export function driverFor(net: Pick<NetworkRecord, 'driver'> | string): NetworkDriver {
  const name = typeof net === 'string' ? net : net.driver;
  const d = DRIVERS[name];
  if (!d) throw new DnsnetError('invalid', `unknown network driver "${name}": this dnsnet has ${Object.keys(DRIVERS).join(', ')}`);
  return d;
}
