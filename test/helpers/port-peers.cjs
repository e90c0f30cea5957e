// Servers and clients for the published-port tests, run with the host's node inside containers and netns.
//   node port-peers.cjs serve PORT...          TCP and UDP on [::] (dual stack): each answers "PORT from ADDRESS"
//   node port-peers.cjs tcp HOST PORT          connect, print the answer (exit 1 on error or after 3 s)
//   node port-peers.cjs udp HOST PORT          one datagram, print the answer (exit 1 after 3 s)
'use strict';
const net = require('node:net');
const dgram = require('node:dgram');

const [mode, ...args] = process.argv.slice(2);
const clean = (a) => a.replace(/^::ffff:/, '');

if (mode === 'serve') {
  for (const port of args.map(Number)) {
    net.createServer((s) => s.end(`${port} from ${clean(s.remoteAddress)}\n`)).listen({ host: '::', port });
    const u = dgram.createSocket({ type: 'udp6' });
    u.on('message', (_m, r) => u.send(`${port} from ${clean(r.address)}\n`, r.port, r.address));
    u.bind(port, '::');
  }
  setInterval(() => undefined, 1 << 30);
} else {
  const [host, port] = [args[0], Number(args[1])];
  setTimeout(() => process.exit(1), 3000).unref();
  if (mode === 'tcp') {
    let out = '';
    net
      .connect({ host, port }, () => undefined)
      .on('data', (d) => (out += d))
      .on('end', () => {
        process.stdout.write(out);
        process.exit(0);
      })
      .on('error', (e) => {
        process.stderr.write(`${e.message}\n`);
        process.exit(1);
      });
  } else {
    const u = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    u.on('message', (m) => {
      process.stdout.write(m);
      process.exit(0);
    });
    const send = () => u.send('ping', port, host);
    send();
    setInterval(send, 500).unref(); // UDP: a lost first datagram (ARP, a proxy flow being set up) is sent again
  }
}
