// Pure builder from parsed `network create` flags to the API's NetworkCreateSpec.
import type { NetworkCreateSpec } from '../api/types.js';

export interface NetworkCreateOptions {
  subnet?: string[];
  gateway?: string[];
  ipRange?: string;
  ipv6?: boolean;
  internal?: boolean;
  opt?: Record<string, string>;
  driver?: string;
  attachable?: boolean;
}

export function buildNetworkCreateSpec(name: string, opts: NetworkCreateOptions): NetworkCreateSpec {
  const spec: NetworkCreateSpec = {
    name,
    subnets: opts.subnet ?? [],
    gateways: opts.gateway ?? [],
    ipv6: opts.ipv6 ?? false,
    internal: opts.internal ?? false,
    options: opts.opt ?? {},
  };
  if (opts.ipRange !== undefined) spec.ipRange = opts.ipRange;
  if (opts.driver !== undefined && opts.driver !== 'bridge') spec.driver = opts.driver;
  if (opts.attachable) spec.attachable = true;
  return spec;
}
