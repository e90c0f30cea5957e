// Runs inside a container's netns (started through nsenter, or through `unshare --net` as a spare whose
// new netns becomes a container's): on a `bind` message, binds UDP and TCP 127.0.0.11:53 (after
// bringing `lo` up when asked: a spare's netns is brand new) and hands both sockets to the parent.
// The message may name another address (a Podman network's gateway, v4 or v6) and port.
// Plain JS on purpose: it is forked with node directly (no TS loader), from src under vitest and from
// dist after tsc.
import dgram from 'node:dgram';
import net from 'node:net';

const HOST = process.env.DNSNET_RESOLVER_HOST || '127.0.0.11';

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

// An IPv6 address the kernel still checks for duplicates (DAD, ~1-2 s after it was added) cannot be bound yet.
const TENTATIVE_WAIT_MS = 3000;

function bindUdp(host, port, done) {
  const started = Date.now();
  const attempt = () => {
    const udp = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
    udp.once('error', (e) => {
      udp.close();
      if (e && e.code === 'EADDRNOTAVAIL' && Date.now() - started < TENTATIVE_WAIT_MS) return setTimeout(attempt, 100);
      fail(`bind udp ${host}:${port}`, e);
    });
    udp.bind({ address: host, port, exclusive: true }, () => {
      udp.removeAllListeners('error');
      done(udp);
    });
  };
  attempt();
}

async function bindAndSend(port, loUp, host) {
  if (loUp) {
    const { execFileSync } = await import('node:child_process');
    try {
      execFileSync('ip', ['link', 'set', 'lo', 'up'], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      return fail('ip link set lo up', { message: String(e.stderr || e.message).trim() });
    }
  }
  bindUdp(host, port, (udp) => {
    const tcp = net.createServer();
    tcp.once('error', (e) => fail(`listen tcp ${host}:${port}`, e));
    tcp.listen({ host, port, exclusive: true, backlog: 128 }, () => {
      // One handle per message; Node waits for the parent's ack of a handle before sending the next.
      process.send({ type: 'udp' }, udp, (err) => {
        if (err) return fail('send udp socket', err);
        process.send({ type: 'tcp' }, tcp, (err2) => {
          if (err2) return fail('send tcp socket', err2);
          // Node keeps the sender's copy open: close ours; the parent owns duplicates now.
          udp.close();
          tcp.close();
        });
      });
    });
  });
}

// The parent disconnects once it has both sockets (a spare: once its netns is named), when it discards
// a spare, or when it dies: in every case there is nothing left to do (a spare's unnamed netns goes
// away with it and the sockets the parent got).
process.on('disconnect', () => process.exit(0));
// But a parent killed while a handle waits for its ack leaves the channel closed with no 'disconnect'
// (Node postpones it until its handle queue drains, which never happens): seen as helpers orphaned,
// still holding their sockets, after kill -9 of the daemon. So also leave once reparented.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 500).unref();
process.on('message', (msg) => {
  if (msg && msg.type === 'bind') void bindAndSend(Number(msg.port || process.env.DNSNET_RESOLVER_PORT || 53), msg.lo === true, typeof msg.host === 'string' ? msg.host : HOST);
});
process.send({ type: 'ready' });
