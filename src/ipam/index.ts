// Public API of ipam/: default pools, network IPAM config, address allocation (addresses and CIDRs: ../ip/).
export { DEFAULT_POOLS, chooseSubnet } from './pools.js';
export { type IpamSpec, resolveIpamConfig, ulaSubnet } from './config.js';
export { allocateAddress, macFor } from './allocate.js';
