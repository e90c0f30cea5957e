// -p / --expose / -P as Docker reads them (pure): every form, and Docker's errors.
import { describe, expect, it } from 'vitest';
import { exposedPorts, parseExpose, parsePublish, publishedBindings } from '../../src/ports/spec.js';

describe('parsePublish', () => {
  it.each<[string, { proto: string; containerPort: number; hostIp: string; hostPort: string }[]]>([
    ['80', [{ proto: 'tcp', containerPort: 80, hostIp: '', hostPort: '' }]],
    ['8080:80', [{ proto: 'tcp', containerPort: 80, hostIp: '', hostPort: '8080' }]],
    ['8080:80/udp', [{ proto: 'udp', containerPort: 80, hostIp: '', hostPort: '8080' }]],
    ['8080:80/SCTP', [{ proto: 'sctp', containerPort: 80, hostIp: '', hostPort: '8080' }]],
    ['127.0.0.1:8080:80', [{ proto: 'tcp', containerPort: 80, hostIp: '127.0.0.1', hostPort: '8080' }]],
    ['127.0.0.1::80', [{ proto: 'tcp', containerPort: 80, hostIp: '127.0.0.1', hostPort: '' }]],
    ['[::1]:8080:80', [{ proto: 'tcp', containerPort: 80, hostIp: '::1', hostPort: '8080' }]],
    ['[fd00::1]::53/udp', [{ proto: 'udp', containerPort: 53, hostIp: 'fd00::1', hostPort: '' }]],
    ['::1:8080:80', [{ proto: 'tcp', containerPort: 80, hostIp: '::1', hostPort: '8080' }]], // Docker joins all but the last two parts
    [
      '8000-8002:80-82',
      [
        { proto: 'tcp', containerPort: 80, hostIp: '', hostPort: '8000' },
        { proto: 'tcp', containerPort: 81, hostIp: '', hostPort: '8001' },
        { proto: 'tcp', containerPort: 82, hostIp: '', hostPort: '8002' },
      ],
    ],
    [
      '80-81',
      [
        { proto: 'tcp', containerPort: 80, hostIp: '', hostPort: '' },
        { proto: 'tcp', containerPort: 81, hostIp: '', hostPort: '' },
      ],
    ],
    ['8000-8010:80', [{ proto: 'tcp', containerPort: 80, hostIp: '', hostPort: '8000-8010' }]], // a pool
  ])('%s', (raw, want) => {
    expect(parsePublish(raw)).toEqual(want);
  });

  it.each([
    ['70000:80', 'invalid hostPort: 70000'],
    ['80:70000', 'invalid containerPort: 70000'],
    ['80:80/foo', 'invalid proto: foo'],
    ['abc', 'invalid containerPort: abc'],
    ['', 'no port specified'],
    ['8080:', 'no port specified'],
    ['0', 'invalid containerPort: 0'],
    ['90-80', 'invalid containerPort: 90-80'],
    ['8000-8001:80-82', 'invalid ranges specified for container and host Ports: 80-82 and 8000-8001'],
    ['1.2.3:80:80', 'invalid IP address: 1.2.3'],
    ['[::1:80:80', 'invalid IP address'],
  ])('refuses %j: %s', (raw, why) => {
    expect(() => parsePublish(raw)).toThrow(why);
    expect(() => parsePublish(raw)).toThrow(/^run: invalid -p /);
  });
});

describe('--expose and -P', () => {
  it('expands ranges and protocols, and -P publishes what -p did not', () => {
    expect(parseExpose('80')).toEqual(['80/tcp']);
    expect(parseExpose('53/udp')).toEqual(['53/udp']);
    expect(parseExpose('8000-8002/tcp')).toEqual(['8000/tcp', '8001/tcp', '8002/tcp']);
    expect(() => parseExpose('80/foo')).toThrow('invalid proto: foo');
    expect(() => parseExpose('x')).toThrow('invalid range format for --expose: x');
    const bindings = parsePublish('8080:80');
    const exposed = exposedPorts(['80', '443', '53/udp'], bindings);
    expect(exposed).toEqual(['80/tcp', '443/tcp', '53/udp']);
    expect(publishedBindings(bindings, exposed, false)).toEqual(bindings);
    expect(publishedBindings(bindings, exposed, true)).toEqual([
      ...bindings,
      { proto: 'tcp', containerPort: 443, hostIp: '', hostPort: '' },
      { proto: 'udp', containerPort: 53, hostIp: '', hostPort: '' },
    ]);
  });
});
