import { describe, expect, it } from 'vitest';
import { findByRef, generateName, newId, validateName } from '../../src/daemon/names.js';
import { DnsnetError } from '../../src/errors.js';

const items = [
  { id: 'abc123' + '0'.repeat(58), name: 'web' },
  { id: 'abd456' + '0'.repeat(58), name: 'db' },
];

describe('names', () => {
  it.each(['ab', 'web-1', 'a.b_c', 'A9'])('accepts %s', (n) => expect(() => validateName('container', n)).not.toThrow());
  it.each(['a', '-ab', '.ab', 'a b', 'a/b', 'x'.repeat(129), ''])('refuses %j with an invalid error', (n) => {
    expect(() => validateName('network', n)).toThrow(DnsnetError);
    expect(() => validateName('network', n)).toThrow(/invalid network name/);
  });

  it('makes 64-hex IDs', () => expect(newId()).toMatch(/^[0-9a-f]{64}$/));

  it('generates a free adjective_noun name', () => {
    const taken = new Set<string>();
    for (let i = 0; i < 300; i++) taken.add(generateName((n) => taken.has(n)));
    expect(taken.size).toBe(300);
    for (const n of taken) expect(() => validateName('container', n)).not.toThrow();
  });

  it.each([
    ['web', 'web'],
    ['/web', 'web'],
    ['abc', 'web'],
    ['abd4', 'db'],
    [items[1]!.id, 'db'],
  ])('finds %s', (ref, name) => expect(findByRef(items, ref, 'container').name).toBe(name));

  it('refuses an ambiguous prefix and an unknown ref', () => {
    expect(() => findByRef(items, 'ab', 'container')).toThrow(/no such container: ab/);
    expect(() => findByRef(items, 'abx', 'container')).toThrow(/no such container/);
    const ambiguous = [...items, { id: 'abc999' + '0'.repeat(58), name: 'other' }];
    expect(() => findByRef(ambiguous, 'abc', 'container')).toThrow(/ambiguous/);
  });
});
