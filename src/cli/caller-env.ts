// What the `dnsnet` shebang changes in the environment, put back for everything the CLI passes on.

/**
 * The shebang starts Node with NODE_EXTRA_CA_CERTS emptied: Node 20 reads that file at every start
 * (~65 ms per command where it is set), and dnsnet makes no TLS connection. The caller's value, kept in
 * DNSNET_HOST_CA_CERTS by the shebang, goes back into our environment at once, so what we pass on
 * (`-e NAME`, the daemon's environment) is what the caller had.
 */
export function restoreCallerEnv(env: NodeJS.ProcessEnv = process.env): void {
  if (!('DNSNET_HOST_CA_CERTS' in env)) return; // started as `node main.js`, not through the shebang
  const saved = env.DNSNET_HOST_CA_CERTS;
  delete env.DNSNET_HOST_CA_CERTS;
  if (saved) env.NODE_EXTRA_CA_CERTS = saved;
  else delete env.NODE_EXTRA_CA_CERTS;
}
