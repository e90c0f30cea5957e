// `--link` parsing and Docker's inspect form, and the run warnings (pure).
import { describe, expect, it } from 'vitest';
import { formatLink, inspectLink, parseLink } from '../../src/state/links.js';
import { runWarnings } from '../../src/daemon/plan.js';

describe('links', () => {
  it.each([
    ['db', { target: 'db', alias: 'db' }],
    ['db:database', { target: 'db', alias: 'database' }],
    ['/db:database', { target: 'db', alias: 'database' }],
    ['db:my_alias', { target: 'db', alias: 'my_alias' }],
  ])('%s', (text, link) => {
    expect(parseLink(text)).toEqual(link);
    expect(parseLink(formatLink(link))).toEqual(link);
  });

  it("shows a legacy link as Docker's inspect does: /target:/linker/alias", () => {
    expect(inspectLink('testinspectlink', parseLink('container1:alias1'))).toBe('/container1:/testinspectlink/alias1');
    expect(inspectLink('two', parseLink('one'))).toBe('/one:/two/one');
  });
});

describe('run warnings', () => {
  it.each([
    [['127.0.0.1'], ['Localhost DNS setting (--dns=127.0.0.1) may fail in containers.']],
    [['10.0.0.1', '127.0.0.61'], ['Localhost DNS setting (--dns=127.0.0.61) may fail in containers.']],
    [['::1'], ['Localhost DNS setting (--dns=::1) may fail in containers.']],
    [['127.0.0.1', '::1'], ['Localhost DNS setting (--dns=127.0.0.1) may fail in containers.']], // once, as Docker
    [['10.0.0.1'], []],
    [[], []],
  ])('--dns %j', (dns, warnings) => {
    expect(runWarnings({ dns })).toEqual(warnings);
  });
});
