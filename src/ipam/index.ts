// Public API of ipam/: CIDR arithmetic, default pools, network IPAM config, address allocation.
export {
  type Address,
  type Cidr,
  type CidrLike,
  type Family,
  bitsOf,
  broadcastAddress,
  cidrSize,
  contains,
  containsCidr,
  familyOf,
  formatAddress,
  formatCidr,
  lastValue,
  networkAddress,
  normaliseAddress,
  normaliseCidr,
  nthAddress,
  overlaps,
  parseAddress,
  parseCidr,
  parseCidrLoose,
} from './cidr.js';
export { DEFAULT_POOLS, chooseSubnet } from './pools.js';
export { type IpamSpec, resolveIpamConfig, ulaSubnet } from './config.js';
export { allocateAddress, macFor } from './allocate.js';
