// DnsnetError: instanceof holds across two copies of the class (the CLI bundle has its own copy, the
// daemon's ES modules another, and `dnsnet daemon` runs both in one process).
import { describe, expect, it } from 'vitest';
import { DnsnetError, wrapError } from '../src/errors.js';

describe('DnsnetError', () => {
  it('is recognised by a second copy of the module, and the other way round', async () => {
    const other = (await import('../src/errors.js?second-copy')) as typeof import('../src/errors.js');
    expect(other.DnsnetError).not.toBe(DnsnetError); // really two classes
    const fromOther = new other.DnsnetError('conflict', 'x');
    expect(fromOther instanceof DnsnetError).toBe(true);
    expect(new DnsnetError('invalid', 'y') instanceof other.DnsnetError).toBe(true);
    expect(wrapError('doing', fromOther).code).toBe('conflict'); // wrapError keeps the other copy's code
  });

  it('is not fooled by plain errors or look-alikes', () => {
    expect(new Error('x') instanceof DnsnetError).toBe(false);
    expect({ name: 'DnsnetError', code: 'invalid', message: 'x' } instanceof DnsnetError).toBe(false);
    expect(null instanceof DnsnetError).toBe(false);
    const e = new DnsnetError('kernel', 'ip failed');
    expect(e instanceof Error).toBe(true);
    expect(e).toMatchObject({ name: 'DnsnetError', code: 'kernel', message: 'ip failed' });
  });
});
