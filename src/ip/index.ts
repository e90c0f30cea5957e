// Public API of ip/: the one parser of addresses and CIDRs (bigints), and the checks built on it.
export * from './cidr.js';
export { addressBytes, ipVersion, isIpLiteral, isLinkLocal6, isLoopback } from './literal.js';
