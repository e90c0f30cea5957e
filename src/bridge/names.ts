// Kernel object names of dnsnet networks: made in state/kernel-names.ts (one file for every name a root claims).
export { bridgeName, tableName } from '../state/kernel-names.js';
