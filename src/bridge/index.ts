// Public API of bridge/: device and table names, the nftables ruleset, bridges, firewall, forwarding.
export { bridgeName, tableName } from './names.js';
export { renderTable, type Firewall, type PortRule } from './ruleset.js';
export {
  type LinkInfo,
  bridgeBatch,
  bridgeMac,
  createBridge,
  deleteBridge,
  enableForwarding,
  hostTakenSubnets,
  linkExists,
  listLinks,
  setRouteLocalnet,
} from './device.js';
export { applyRuleset, checkRuleset } from './firewall.js';
