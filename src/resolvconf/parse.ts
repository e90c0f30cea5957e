// Parse a resolv.conf the way the C resolvers read it, into a plain value (step 1 of the pipeline).
import { isIpLiteral } from '../ip/index.js';

export interface ResolvConf {
  nameservers: string[]; // valid IP literals, in file order
  search: string[]; // from the last `search` or `domain` line
  options: string[]; // every `options` line, in order
  other: string[]; // unknown lines, verbatim (rendered after options)
  invalid: string[]; // nameserver values that are not IP literals (dropped)
}

/**
 * Lines longer than this are ignored: glibc and musl read a line into a fixed buffer far smaller
 * (musl: 256 bytes), so such a line was never a working entry, and skipping it keeps a huge or
 * garbage input cheap.
 */
export const MAX_LINE_LENGTH = 4096;

/** At most this many entries are kept per list, so a 10 MB file cannot make a 10 MB result. */
export const MAX_ENTRIES = 256;

// C0 controls other than tab, and DEL: a line holding one is binary garbage, not configuration.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** A missing file is the same as an empty one: pass ''. Never throws. */
export function parseResolvConf(text: string): ResolvConf {
  const rc: ResolvConf = { nameservers: [], search: [], options: [], other: [], invalid: [] };
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    // Measure before slicing, so an over-long line costs nothing.
    if (end - start <= MAX_LINE_LENGTH) parseLine(rc, text.slice(start, end));
    start = end + 1;
  }
  return rc;
}

function parseLine(rc: ResolvConf, raw: string): void {
  const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw; // tolerate CRLF files
  if (line === '' || line[0] === '#' || line[0] === ';') return;
  if (CONTROL.test(line)) return;
  const fields = line.split(/[ \t]+/).filter((f) => f !== '');
  const [keyword, ...args] = fields;
  if (keyword === undefined) return; // blank but for whitespace
  switch (keyword) {
    case 'nameserver': {
      const value = args[0];
      if (value === undefined) return; // nothing to use, nothing to report
      push(isIpLiteral(value) ? rc.nameservers : rc.invalid, value);
      return;
    }
    case 'domain': // `domain X` is `search X`; the last of either wins
      rc.search = args.slice(0, 1);
      return;
    case 'search':
      rc.search = args.slice(0, MAX_ENTRIES);
      return;
    case 'options':
      for (const opt of args) push(rc.options, opt);
      return;
    default:
      push(rc.other, line);
  }
}

function push(list: string[], value: string): void {
  if (list.length < MAX_ENTRIES) list.push(value);
}
