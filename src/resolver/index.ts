// Public API of the embedded resolver.
export { Resolver, MAX_INFLIGHT_PER_CONTAINER } from './resolver.js';
export type { ResolverOptions, ResolverRegistration, ResolverStats } from './resolver.js';
export { RecordStore, normalizeName, reverseName, networkAsker, TTL, PODMAN_DOMAIN, type NameStyle } from './records.js';
export type { ResolverContainer, ResolverEndpoint, NameRecords, PtrRecord } from './records.js';
export { handleQuery, parseQuery, buildRcodeReply, RCODE, EDNS_UDP_SIZE } from './handler.js';
export type { HandlerResult, ParsedQuery, Transport } from './handler.js';
export { UpstreamForwarder, parseUpstream, DEFAULT_UPSTREAM_TIMEOUT_MS, DEAD_FOR_MS } from './upstream.js';
