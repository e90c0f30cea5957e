// The shebang's NODE_EXTRA_CA_CERTS swap is undone before anything is passed on.
import { describe, expect, it } from 'vitest';
import { restoreCallerEnv } from '../../src/cli/caller-env.js';

describe('restoreCallerEnv', () => {
  it.each<[string, NodeJS.ProcessEnv, NodeJS.ProcessEnv]>([
    ['the caller had a value', { DNSNET_HOST_CA_CERTS: '/a b/c.pem', NODE_EXTRA_CA_CERTS: '', X: '1' }, { NODE_EXTRA_CA_CERTS: '/a b/c.pem', X: '1' }],
    ['the caller had none', { DNSNET_HOST_CA_CERTS: '', NODE_EXTRA_CA_CERTS: '', X: '1' }, { X: '1' }],
    ['started without the shebang (node main.js)', { NODE_EXTRA_CA_CERTS: '/x.pem' }, { NODE_EXTRA_CA_CERTS: '/x.pem' }],
  ])('%s', (_case, env, want) => {
    restoreCallerEnv(env);
    expect(env).toEqual(want);
  });
});
