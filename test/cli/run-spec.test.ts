// argv -> RunSpec / ExecSpec / NetworkCreateSpec through the real command tree, and the pure builders.
import { describe, expect, it } from 'vitest';
import type { RunSpec } from '../../src/api/types.js';
import { buildExecSpec, buildRunSpec, pickCallerEnv } from '../../src/cli/run-spec.js';
import { parseArgv } from './parse.js';

const base: RunSpec = {
  detach: false,
  autoRemove: false,
  networkAliases: [],
  links: [],
  extraHosts: [],
  dns: [],
  dnsSearch: [],
  dnsOptions: [],
  env: [],
  cmd: [],
};

const callerEnv = { HOME: '/home/u', TERM: 'xterm' };

describe('run: argv -> RunSpec', () => {
  it.each<[string, string[], Partial<RunSpec>]>([
    ['flags stop at the first positional', ['--name', 'a', 'ls', '-l'], { name: 'a', cmd: ['ls', '-l'] }],
    ['-- ends the flags and is dropped', ['--name', 'a', '--', 'ls', '-l'], { name: 'a', cmd: ['ls', '-l'] }],
    ['a later -- belongs to the command', ['sh', '--', '-c', 'x'], { cmd: ['sh', '--', '-c', 'x'] }],
    ['a command flag named like ours stays the command\'s', ['ping', '-d', '--rm', '--name', 'x'], { cmd: ['ping', '-d', '--rm', '--name', 'x'] }],
    ['--help after the command is the command\'s', ['ls', '--help'], { cmd: ['ls', '--help'] }],
    ['--rm -d', ['--rm', '-d', 'sleep', 'infinity'], { autoRemove: true, detach: true, cmd: ['sleep', 'infinity'] }],
    ['--detach long form', ['--detach', 'true'], { detach: true, cmd: ['true'] }],
    ['-h is the hostname', ['-h', 'web.local', 'hostname'], { hostname: 'web.local', cmd: ['hostname'] }],
    ['--hostname=', ['--hostname=h1', 'true'], { hostname: 'h1', cmd: ['true'] }],
    ['--network and --ip', ['--network', 'app', '--ip', '172.18.0.9', 'true'], { network: 'app', ip: '172.18.0.9', cmd: ['true'] }],
    ['hidden --net', ['--net', 'app', 'true'], { network: 'app', cmd: ['true'] }],
    ['--network container:NAME', ['--network', 'container:base', 'true'], { network: 'container:base', cmd: ['true'] }],
    [
      '-p, --publish, -P and --expose',
      ['-p', '8080:80', '--publish', '127.0.0.1::53/udp', '-P', '--expose', '443', '--expose=9000-9001/udp', 'true'],
      { publish: ['8080:80', '127.0.0.1::53/udp'], publishAll: true, expose: ['443', '9000-9001/udp'], cmd: ['true'] },
    ],
    ['--net=', ['--net=app', 'true'], { network: 'app', cmd: ['true'] }],
    ['the last network flag wins', ['--network', 'a', '--net', 'b', 'true'], { network: 'b', cmd: ['true'] }],
    [
      '--network-alias and hidden --net-alias accumulate in flag order',
      ['--network-alias', 'x', '--net-alias', 'y', '--network-alias', 'z', 'true'],
      { networkAliases: ['x', 'y', 'z'], cmd: ['true'] },
    ],
    [
      '--dns-option and hidden --dns-opt accumulate in flag order',
      ['--dns-opt', 'ndots:2', '--dns-option', 'rotate', '--dns-opt=timeout:1', 'true'],
      { dnsOptions: ['ndots:2', 'rotate', 'timeout:1'], cmd: ['true'] },
    ],
    ['--dns repeats', ['--dns', '1.1.1.1', '--dns', '9.9.9.9', 'true'], { dns: ['1.1.1.1', '9.9.9.9'], cmd: ['true'] }],
    ['--dns-search repeats', ['--dns-search', 'a.example', '--dns-search', '.', 'true'], { dnsSearch: ['a.example', '.'], cmd: ['true'] }],
    ['--add-host repeats, IPv6 unbracketed', ['--add-host', 'db:10.0.0.5', '--add-host', 'v6:fd00::1', 'true'], { extraHosts: ['db:10.0.0.5', 'v6:fd00::1'], cmd: ['true'] }],
    ['--link repeats', ['--link', 'db', '--link', 'web:w', 'true'], { links: ['db', 'web:w'], cmd: ['true'] }],
    ['-e K=V and --env repeat', ['-e', 'A=1', '--env', 'B=2', 'env'], { env: ['A=1', 'B=2'], cmd: ['env'] }],
    ['-e K takes K from the caller', ['-e', 'HOME', '-e', 'A=1', 'env'], { env: ['HOME', 'A=1'], callerEnv: { HOME: '/home/u' }, cmd: ['env'] }],
    ['-e K the caller lacks is left out', ['-e', 'NOPE', 'env'], { env: ['NOPE'], callerEnv: {}, cmd: ['env'] }],
    ['-w and --rootfs', ['-w', '/srv', '--rootfs', '/var/roots/a', 'pwd'], { workdir: '/srv', rootfs: '/var/roots/a', cmd: ['pwd'] }],
    ['-it is accepted and changes nothing', ['-it', '--rm', 'sh'], { autoRemove: true, cmd: ['sh'] }],
    ['grouped short flags', ['-dit', 'sleep', '1'], { detach: true, cmd: ['sleep', '1'] }],
  ])('%s', async (_name, argv, expected) => {
    const call = await parseArgv(['run', ...argv], callerEnv);
    expect(call.handler).toBe('run');
    expect(call.args).toEqual([{ ...base, ...expected }]);
  });

  it.each([
    ['no command', ['run']],
    ['no command after flags', ['run', '--name', 'a']],
    ['unknown flag before the command', ['run', '--bogus', 'ls']],
    ['flag without its value', ['run', '--name']],
  ])('rejects %s', async (_name, argv) => {
    await expect(parseArgv(argv)).rejects.toMatchObject({ exitCode: 1, code: expect.stringMatching(/^commander\./) });
  });

  it('--help is help, not a flag value, on run', async () => {
    await expect(parseArgv(['run', '--help'])).rejects.toMatchObject({ code: 'commander.helpDisplayed' });
  });
});

describe('exec: argv -> ExecSpec', () => {
  it.each<[string, string[], string, unknown]>([
    ['container then command', ['web', 'ls', '-l'], 'web', { cmd: ['ls', '-l'], env: [] }],
    ['flags stop at the container', ['-e', 'A=1', '-w', '/tmp', 'web', 'sh', '-e'], 'web', { cmd: ['sh', '-e'], env: ['A=1'], workdir: '/tmp' }],
    ['-- before the container', ['--', 'web', 'ls'], 'web', { cmd: ['ls'], env: [] }],
    ['-it and -e K', ['-it', '-e', 'TERM', 'web', 'sh'], 'web', { cmd: ['sh'], env: ['TERM'], callerEnv: { TERM: 'xterm' } }],
  ])('%s', async (_name, argv, container, spec) => {
    const call = await parseArgv(['exec', ...argv], callerEnv);
    expect(call).toEqual({ handler: 'exec', args: [container, spec] });
  });

  it('needs a command', async () => {
    await expect(parseArgv(['exec', 'web'])).rejects.toMatchObject({ code: 'commander.missingArgument' });
  });
});

describe('other commands: argv -> handler arguments', () => {
  it.each<[string[], string, unknown[]]>([
    [['network', 'create', 'app'], 'networkCreate', [{ name: 'app', subnets: [], gateways: [], ipv6: false, internal: false, options: {} }]],
    [
      ['network', 'create', '--subnet', '10.1.0.0/24', '--subnet', 'fd00:1::/64', '--gateway', '10.1.0.254', '--ip-range', '10.1.0.128/25', '--ipv6', '--internal', '-o', 'mtu=1400', 'app'],
      'networkCreate',
      [{ name: 'app', subnets: ['10.1.0.0/24', 'fd00:1::/64'], gateways: ['10.1.0.254'], ipRange: '10.1.0.128/25', ipv6: true, internal: true, options: { mtu: '1400' } }],
    ],
    [['network', 'create', '-d', 'bridge', 'app'], 'networkCreate', [{ name: 'app', subnets: [], gateways: [], ipv6: false, internal: false, options: {} }]],
    // The daemon knows its drivers (and refuses the others with one line).
    [['network', 'create', '-d', 'overlay', 'app'], 'networkCreate', [{ name: 'app', driver: 'overlay', subnets: [], gateways: [], ipv6: false, internal: false, options: {} }]],
    [['network', 'ls'], 'networkLs', [{ quiet: false, format: 'table' }]],
    [['network', 'ls', '-q'], 'networkLs', [{ quiet: true, format: 'table' }]],
    [['network', 'list', '--format', 'json'], 'networkLs', [{ quiet: false, format: 'json' }]],
    [['network', 'inspect', 'a', 'b'], 'networkInspect', [['a', 'b']]],
    [['network', 'rm', 'a', 'b'], 'networkRm', [['a', 'b']]],
    [['network', 'prune', '-f'], 'networkPrune', []],
    [['network', 'connect', '--alias', 'x', '--alias', 'y', '--ip', '10.1.0.7', 'app', 'web'], 'networkConnect', ['app', { container: 'web', aliases: ['x', 'y'], ip: '10.1.0.7' }]],
    [['network', 'disconnect', '-f', 'app', 'web'], 'networkDisconnect', ['app', 'web', true]],
    [['ps'], 'ps', [{ all: false, quiet: false, format: 'table' }]],
    [['ps', '-aq'], 'ps', [{ all: true, quiet: true, format: 'table' }]],
    [['ps', '--format', 'json'], 'ps', [{ all: false, quiet: false, format: 'json' }]],
    [['inspect', 'a', 'b'], 'inspect', [['a', 'b']]],
    [['port', 'web'], 'port', ['web', undefined]],
    [['pull', 'busybox'], 'pull', ['busybox', undefined]],
    [['pull', '--tls-verify=false', 'localhost:5000/app:v1'], 'pull', ['localhost:5000/app:v1', false]],
    [['image', 'pull', '--tls-verify', 'true', 'app'], 'pull', ['app', true]],
    [['images'], 'images', [{ quiet: false, format: 'table' }]],
    [['image', 'ls', '-q'], 'images', [{ quiet: true, format: 'table' }]],
    [['rmi', '-f', 'a', 'b'], 'rmi', [['a', 'b'], true]],
    [['image', 'rm', 'a'], 'rmi', [['a'], false]],
    [['image', 'inspect', 'a', 'b'], 'imageInspect', [['a', 'b']]],
    [['port', 'web', '80/udp'], 'port', ['web', '80/udp']],
    [['stop', 'a', 'b'], 'stop', [['a', 'b'], undefined]],
    [['stop', '-t', '0', 'a'], 'stop', [['a'], 0]],
    [['start', 'a'], 'start', [['a']]],
    [['rm', '-f', 'a', 'b'], 'rm', [['a', 'b'], true]],
    [['logs', '-f', 'a'], 'logs', ['a', true]],
    [['stats', '--format', 'json'], 'stats', ['json']],
    [['system', 'prune'], 'systemPrune', []],
    [['daemon'], 'daemon', [{}]],
    [['daemon', '--cluster-store', 'etcd://10.1.1.1:2379', '--cluster-advertise', '10.1.1.2'], 'daemon', [{ clusterStore: 'etcd://10.1.1.1:2379', clusterAdvertise: '10.1.1.2' }]],
    [['demo'], 'demo', []],
    [['version'], 'version', []],
  ])('%j', async (argv, handler, args) => {
    expect(await parseArgv(argv)).toEqual({ handler, args });
  });

  it.each([
    [['network', 'create', '-o', 'mtu', 'app']],
    [['ps', '--format', '{{.ID}}']],
    [['pull', '--tls-verify=maybe', 'app']],
    [['stop', '-t', 'soon', 'a']],
    [['logs', 'a', 'b']],
    [['network', 'connect', 'app']],
  ])('rejects %j', async (argv) => {
    await expect(parseArgv(argv)).rejects.toMatchObject({ exitCode: 1, code: expect.stringMatching(/^commander\./) });
  });
});

describe('pure builders', () => {
  it('buildRunSpec leaves unset optionals out', () => {
    expect(buildRunSpec({}, ['true'], {})).toEqual({ ...base, cmd: ['true'] });
  });

  it('buildExecSpec carries workdir and caller env', () => {
    expect(buildExecSpec({ env: ['HOME'], workdir: '/' }, ['id'], callerEnv)).toEqual({ cmd: ['id'], env: ['HOME'], workdir: '/', callerEnv: { HOME: '/home/u' } });
  });

  it('pickCallerEnv sends only the keys asked for', () => {
    expect(pickCallerEnv(['A=1', 'HOME', 'TERM'], { ...callerEnv, SECRET: 's' })).toEqual({ HOME: '/home/u', TERM: 'xterm' });
    expect(pickCallerEnv(['A=1'], callerEnv)).toBeUndefined();
  });
});
