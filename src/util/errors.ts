// Typed errors for bad input. Hardware outcomes are values, never exceptions;
// exceptions are for bugs and for input a user must fix (exit code 2).

/** Input a user gave us (a file, a flag, a scenario) is unusable. */
export class InputError extends Error {
  override name = 'InputError';
}

/** A command-line usage mistake. */
export class UsageError extends InputError {
  override name = 'UsageError';
}

/** A vmcore (or other dump file) is malformed; names file, offset and field. */
export class VmcoreFormatError extends InputError {
  override name = 'VmcoreFormatError';
  readonly file: string;
  readonly offset: number | undefined;
  readonly field: string | undefined;
  constructor(message: string, where: { file: string; offset?: number; field?: string }) {
    super(message);
    this.file = where.file;
    this.offset = where.offset;
    this.field = where.field;
  }
}

/** A scenario file is malformed; names file, line and column. */
export class ScenarioError extends InputError {
  override name = 'ScenarioError';
  readonly file: string;
  readonly line: number;
  readonly col: number;
  constructor(message: string, where: { file: string; line: number; col: number }) {
    super(`${where.file}:${where.line}:${where.col}: ${message}`);
    this.file = where.file;
    this.line = where.line;
    this.col = where.col;
  }
}

/** A value outside what the model supports (not the user's fault, not a bug in input syntax). */
export function isInputError(e: unknown): e is InputError {
  return e instanceof InputError;
}
