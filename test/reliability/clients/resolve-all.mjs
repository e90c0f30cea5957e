// Resolve several names at 127.0.0.11 from inside a netns, in parallel over UDP: prints
// {"name": {"rcode","answers"} | "timeout"} as JSON. Usage: node resolve-all.mjs [--type T] NAME...
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

let args = process.argv.slice(2);
let type = 'A';
if (args[0] === '--type') (type = args[1]), (args = args.slice(2));
const sock = dgram.createSocket('udp4');
const out = {};
const pending = new Map();
sock.on('message', (m) => {
  const p = dnsPacket.decode(m);
  const name = pending.get(p.id);
  if (name === undefined) return;
  pending.delete(p.id);
  out[name] = { rcode: p.rcode, answers: (p.answers ?? []).map((a) => String(a.data)) };
  if (pending.size === 0) finish();
});
function finish() {
  for (const name of pending.values()) out[name] = 'timeout';
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}
setTimeout(finish, 2000);
args.forEach((name, i) => {
  const id = i + 1;
  pending.set(id, name);
  sock.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, class: 'IN', name }] }), 53, '127.0.0.11');
});
if (args.length === 0) finish();
