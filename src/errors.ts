// The one error type of dnsnet: a stable code, a short message "<doing what>: <why>", and the cause.

export type ErrorCode =
  | 'invalid' // bad input from the user: exit 125, nothing changed
  | 'not-found' // unknown network or container
  | 'conflict' // duplicate name, address taken, network in use
  | 'exhausted' // no free subnet or address
  | 'kernel' // ip / nft / mount failed
  | 'internal'; // a bug or an unexpected state

// The `dnsnet` command is one CommonJS bundle with its own copy of this class, while `dnsnet daemon` and
// `dnsnet demo` load the ES modules (with this file) into the same process: instanceof goes by a
// registry-wide symbol, so an error from either copy is a DnsnetError to both.
const BRAND = Symbol.for('dnsnet.DnsnetError');

export class DnsnetError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DnsnetError';
    this.code = code;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** Prefix an error's message with what was being done, keeping its code and cause. */
export function wrapError(doing: string, error: unknown, code: ErrorCode = 'internal'): DnsnetError {
  if (error instanceof DnsnetError) return new DnsnetError(error.code, `${doing}: ${error.message}`, { cause: error });
  const why = error instanceof Error ? firstLine(error.message) : String(error);
  return new DnsnetError(code, `${doing}: ${why}`, { cause: error });
}

export function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  return line.trim();
}
