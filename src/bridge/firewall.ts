// Apply (or just check) a state root's nftables table in one `nft -f -` transaction (shell).
import { runNft } from '../netns/run.js';
import type { NetworkRecord } from '../state/types.js';
import { renderTable, type Firewall } from './ruleset.js';

/** Make `table inet <table>` match the networks and published ports (no network: delete it). All or nothing; DnsnetError('kernel'). */
export async function applyRuleset(table: string, fw: Firewall | NetworkRecord[]): Promise<void> {
  await runNft(renderTable(table, fw), { what: `apply nftables table inet ${table}` });
}

/** Validate the script with `nft -c` without changing the ruleset. */
export async function checkRuleset(table: string, fw: Firewall | NetworkRecord[]): Promise<void> {
  await runNft(renderTable(table, fw), { check: true, what: `check nftables table inet ${table}` });
}
