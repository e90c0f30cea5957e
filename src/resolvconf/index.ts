// The resolvconf module: container resolv.conf, hosts and hostname, their writer, the host file watcher.
export { parseResolvConf, MAX_LINE_LENGTH, MAX_ENTRIES, type ResolvConf } from './parse.js';
export {
  parseDnsServer,
  validateDnsSearch,
  validateDnsOption,
  validateHostname,
  validateAlias,
  parseAddHost,
  splitAddHost,
  isValidNdots,
  HOST_GATEWAY,
} from './validate.js';
export {
  buildResolvConf,
  chooseHostResolvConf,
  embeddedUpstreams,
  type EmbeddedUpstreams,
  EMBEDDED_RESOLVER,
  SYSTEMD_RESOLVED_STUB,
  SYSTEMD_RESOLVED_PATH,
  FALLBACK_NAMESERVERS,
  FALLBACK_NAMESERVERS6,
  type ResolvConfInput,
  type GeneratedResolvConf,
} from './resolv-conf.js';
export { renderHosts, renderHostname, type HostsInput } from './hosts.js';
export { sha256, writeInPlace, rewriteIfUnedited, type RewriteResult } from './writer.js';
export {
  watchHostResolvConf,
  type WatchHostResolvConfOptions,
  type HostResolvConfWatcher,
} from './watcher.js';
