// The udpbatch addon's JS side (no root): it is built and loaded, sockaddr encoding, and a round trip on loopback.
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { nativeUdp, nativeUdpUnavailable, sameSockaddr, sockaddr } from '../../src/resolver/native-udp.js';

const toClose: (() => void)[] = [];
afterEach(() => {
  while (toClose.length > 0) toClose.pop()!();
});

describe('udpbatch addon', () => {
  it('is built by npm run build and loads (else the resolver falls back to node:dgram)', () => {
    expect(nativeUdpUnavailable()).toBe('');
    expect(nativeUdp()?.batch).toBeGreaterThan(1);
  });

  it('encodes sockaddr_in and sockaddr_in6 as the kernel does', () => {
    expect(sockaddr('127.53.1.2', 53, 4)!.toString('hex')).toBe('0200' + '0035' + '7f350102' + '0000000000000000');
    const v6 = sockaddr('fd00::1:2', 5353, 6)!;
    expect(v6.length).toBe(28);
    expect(v6.subarray(0, 4).toString('hex')).toBe('0a0014e9');
    expect(v6.subarray(8, 24).toString('hex')).toBe('fd000000000000000000000000010002');
    expect(sockaddr('::ffff:10.1.2.3', 53, 6)!.subarray(8, 24).toString('hex')).toBe('00000000000000000000ffff0a010203');
    expect(sockaddr('::1', 53, 6)!.subarray(8, 24).toString('hex')).toBe('00000000000000000000000000000001');
    expect(sockaddr('fe80::1%eth0', 53, 6)).toBeUndefined();
  });

  it('compares a received address with an upstream by family, port and address', () => {
    const a = sockaddr('127.0.0.1', 53, 4)!;
    expect(sameSockaddr(a, 0, 16, sockaddr('127.0.0.1', 53, 4)!)).toBe(true);
    expect(sameSockaddr(a, 0, 16, sockaddr('127.0.0.1', 54, 4)!)).toBe(false);
    expect(sameSockaddr(a, 0, 16, sockaddr('127.0.0.2', 53, 4)!)).toBe(false);
    const b = sockaddr('fd00::5', 53, 6)!;
    expect(sameSockaddr(b, 0, 28, sockaddr('fd00::5', 53, 6)!)).toBe(true);
    expect(sameSockaddr(b, 0, 28, sockaddr('fd00::6', 53, 6)!)).toBe(false);
    expect(sameSockaddr(a, 0, 16, b)).toBe(false);
  });

  it('receives in batches and sends replies queued in the callback to each sender', async () => {
    const n = nativeUdp()!;
    const fd = n.addon.socket(4);
    const seen: string[] = [];
    let handle: object | undefined;
    try {
      handle = n.addon.open(fd, (count) => {
        for (let i = 0; i < count; i++) {
          const msg = Buffer.from(n.rx.subarray(i * n.rxSlot, i * n.rxSlot + n.meta[2 * i]!));
          seen.push(msg.toString());
          const reply = Buffer.from(`re:${msg.toString()}`);
          n.addon.reply(handle!, i, reply, reply.length);
        }
      });
    } finally {
      n.addon.closeFd(fd);
    }
    toClose.push(() => n.addon.close(handle!));
    const port = n.addon.localPort(handle);
    // Outside a batch callback, reply() has no sender to go to.
    expect(() => n.addon.reply(handle!, 0, Buffer.from('x'), 1)).toThrow(/outside the batch/);
    const clients = [dgram.createSocket('udp4'), dgram.createSocket('udp4')];
    const got: string[][] = [[], []];
    await Promise.all(
      clients.map(
        (c, k) =>
          new Promise<void>((resolve) => {
            toClose.push(() => c.close());
            c.on('message', (m) => {
              got[k]!.push(m.toString());
              if (got[k]!.length === 50) resolve();
            });
            c.bind(0, '127.0.0.1', () => {
              for (let i = 0; i < 50; i++) c.send(`${k}-${i}`, port, '127.0.0.1');
            });
          }),
      ),
    );
    for (const k of [0, 1]) expect(got[k]!.sort()).toEqual(Array.from({ length: 50 }, (_, i) => `re:${k}-${i}`).sort());
    expect(seen.length).toBe(100);
  });

  it('a handle closed inside its own callback, with a reply queued, drops that reply and the others go on', async () => {
    const n = nativeUdp()!;
    const open = (onMsg: (h: object, i: number, msg: Buffer) => void): { h: object; port: number } => {
      const fd = n.addon.socket(4);
      let h: object | undefined;
      try {
        h = n.addon.open(fd, (count) => {
          for (let i = 0; i < count; i++) onMsg(h!, i, Buffer.from(n.rx.subarray(i * n.rxSlot, i * n.rxSlot + n.meta[2 * i]!)));
        });
      } finally {
        n.addon.closeFd(fd);
      }
      return { h, port: n.addon.localPort(h) };
    };
    let closedOnce = false;
    const a = open((h, i, msg) => {
      n.addon.reply(h, i, msg, msg.length);
      if (!closedOnce) {
        closedOnce = true;
        n.addon.close(h); // its queued reply must not be sent from freed memory later
      }
    });
    const b = open((h, i, msg) => n.addon.reply(h, i, Buffer.from(`b:${msg.toString()}`), msg.length + 2));
    toClose.push(() => n.addon.close(b.h));
    const client = dgram.createSocket('udp4');
    toClose.push(() => client.close());
    const got: string[] = [];
    await new Promise<void>((resolve) => {
      client.on('message', (m) => {
        got.push(m.toString());
        resolve();
      });
      client.bind(0, '127.0.0.1', () => {
        client.send('to-a', a.port, '127.0.0.1');
        setTimeout(() => client.send('to-b', b.port, '127.0.0.1'), 50);
      });
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(closedOnce).toBe(true);
    expect(got).toEqual(['b:to-b']);
  });
});
