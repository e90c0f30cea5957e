// Runs inside a container's netns (started through nsenter): binds UDP and TCP 127.0.0.11:53 and hands both sockets to the parent.
// Plain JS on purpose: it is forked with node directly (no TS loader), from src under vitest and from dist after tsc.
import dgram from 'node:dgram';
import net from 'node:net';

const HOST = process.env.DNSNET_RESOLVER_HOST || '127.0.0.11';
const PORT = Number(process.env.DNSNET_RESOLVER_PORT || 53);

function fail(doing, error) {
  const message = `${doing}: ${error && error.message ? error.message : String(error)}`;
  if (!process.send) {
    process.stderr.write(message + '\n');
    process.exit(1);
  }
  process.send({ type: 'error', message }, () => process.exit(1));
}

if (!process.send) {
  process.stderr.write('socket-helper: no IPC channel (must be forked)\n');
  process.exit(2);
}

const udp = dgram.createSocket({ type: 'udp4' });
udp.once('error', (e) => fail(`bind udp ${HOST}:${PORT}`, e));
udp.bind({ address: HOST, port: PORT, exclusive: true }, () => {
  const tcp = net.createServer();
  tcp.once('error', (e) => fail(`listen tcp ${HOST}:${PORT}`, e));
  tcp.listen({ host: HOST, port: PORT, exclusive: true, backlog: 128 }, () => {
    // One handle per message; Node waits for the parent's ack of a handle before sending the next.
    process.send({ type: 'udp' }, udp, (err) => {
      if (err) return fail('send udp socket', err);
      process.send({ type: 'tcp' }, tcp, (err2) => {
        if (err2) return fail('send tcp socket', err2);
        // Node keeps the sender's copy open: close ours; the parent owns duplicates now.
        udp.close();
        tcp.close();
        // Stay until the parent disconnects (it does after receiving both), so nothing is lost in flight.
        process.on('disconnect', () => process.exit(0));
      });
    });
  });
});
