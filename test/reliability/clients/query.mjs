// One DNS query to 127.0.0.11:53 from inside a netns: prints {"rcode","answers"} as JSON, or "timeout".
// Usage: node query.mjs NAME [TYPE] [udp|tcp] [timeoutMs]
import DgramAsPromised from 'dgram-as-promised';
import net from 'node:net';
import dnsPacket from 'dns-packet';

const [name, type = 'A', transport = 'udp', timeoutMs = '1000'] = process.argv.slice(2);
const q = dnsPacket.encode({ type: 'query', id: Math.floor(Math.random() * 65535), flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, class: 'IN', name }] });
const done = (buf) => {
  if (!buf) {
    process.stdout.write('timeout\n');
    process.exit(0);
  }
  const p = dnsPacket.decode(buf);
  process.stdout.write(JSON.stringify({ rcode: p.rcode, answers: (p.answers ?? []).map((a) => String(a.data)) }) + '\n');
  process.exit(0);
};
setTimeout(() => done(null), Number(timeoutMs));
if (transport === 'tcp') {
  const s = net.connect(53, '127.0.0.11', () => s.write(dnsPacket.streamEncode(JSON.parse(JSON.stringify(dnsPacket.decode(q))))));
  let buf = Buffer.alloc(0);
  s.on('data', (c) => {
    buf = Buffer.concat([buf, c]);
    if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(buf.subarray(2, 2 + buf.readUInt16BE(0)));
  });
  s.on('error', () => done(null));
} else {
  // dgram-as-promised: send, then await the one reply (or the timeout set on the socket).
  const s = DgramAsPromised.createSocket('udp4').setTimeout(Number(timeoutMs));
  try {
    await s.send(q, 53, '127.0.0.11');
    done((await s.recv())?.msg ?? null);
  } catch {
    done(null);
  }
}
