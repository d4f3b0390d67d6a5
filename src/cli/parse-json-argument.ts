/**
 * Parses a JSON command-line argument, and when it is not JSON says where: V8's own messages only sometimes
 * include a position, so a small scanner finds the first offending character.
 * @module
 */
import { CliError } from './cli-error.js';

/**
 * Parses `text` as JSON.
 * @param what names the argument in the error, e.g. `"the payload"`.
 * @throws CliError `Expected <what> to be JSON, got <problem> at position N (line L, column C)`.
 */
export function parseJsonArgument(what: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const problem = findJsonError(text) ?? { position: 0, found: 'invalid JSON' };
    const before = text.slice(0, problem.position);
    const line = before.split('\n').length;
    const column = problem.position - before.lastIndexOf('\n');
    throw new CliError(`Expected ${what} to be JSON, got ${problem.found} at position ${problem.position} (line ${line}, column ${column})`, { cause: error });
  }
}

/** Where a JSON text first goes wrong, and what is found there. */
export interface JsonProblem {
  /** 0-based offset of the offending character (the text's length for a premature end). */
  position: number;
  /** E.g. `unexpected "}"` or `end of input`. */
  found: string;
}

/**
 * Scans `text` with the JSON grammar and returns the first problem, or null when it is valid JSON.
 */
export function findJsonError(text: string): JsonProblem | null {
  let i = 0;
  const fail = (expected: string): never => {
    const found = i >= text.length ? 'end of input' : `unexpected ${JSON.stringify(text[i])}`;
    throw { position: Math.min(i, text.length), found: `${found} where ${expected} was expected` } satisfies JsonProblem;
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const literal = (word: string) => {
    for (const ch of word) {
      if (text[i] !== ch) fail(`"${word}"`);
      i++;
    }
  };
  const string = () => {
    i++; // opening quote
    while (true) {
      if (i >= text.length) fail('a closing quote');
      const ch = text[i]!;
      if (ch === '"') {
        i++;
        return;
      }
      if (ch < ' ') fail('an escaped control character');
      if (ch === '\\') {
        i++;
        const esc = text[i];
        if (esc === 'u') {
          for (let k = 1; k <= 4; k++) {
            i++;
            if (!/^[0-9a-fA-F]$/.test(text[i] ?? '')) fail('a hex digit');
          }
        } else if (esc === undefined || !'"\\/bfnrt'.includes(esc)) {
          fail('an escape sequence');
        }
      }
      i++;
    }
  };
  const number = () => {
    if (text[i] === '-') i++;
    if (text[i] === '0') i++;
    else if (/[1-9]/.test(text[i] ?? '')) while (/[0-9]/.test(text[i] ?? '')) i++;
    else fail('a digit');
    if (text[i] === '.') {
      i++;
      if (!/[0-9]/.test(text[i] ?? '')) fail('a digit');
      while (/[0-9]/.test(text[i] ?? '')) i++;
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      if (!/[0-9]/.test(text[i] ?? '')) fail('a digit');
      while (/[0-9]/.test(text[i] ?? '')) i++;
    }
  };
  /** A property name and its colon, after `{` or `,` inside an object. */
  const key = () => {
    ws();
    if (text[i] !== '"') fail('a property name in double quotes');
    string();
    ws();
    if (text[i] !== ':') fail('":"');
    i++;
  };
  /**
   * One value, however deeply nested. Iterative, with the open arrays and objects on a stack of their own: recursion
   * ran out of call stack on an argument of 20,000 `[`, which fits well within one command-line argument.
   */
  const value = (): void => {
    const open: ('[' | '{')[] = [];
    for (;;) {
      ws();
      const ch = text[i];
      if (ch === '{' || ch === '[') {
        i++;
        ws();
        if (text[i] !== (ch === '{' ? '}' : ']')) {
          open.push(ch);
          if (ch === '{') key();
          continue;
        }
        i++;
      } else if (ch === '"') string();
      else if (ch === 't') literal('true');
      else if (ch === 'f') literal('false');
      else if (ch === 'n') literal('null');
      else if (ch === '-' || /[0-9]/.test(ch ?? '')) number();
      else fail('a value');
      // A value is complete: close what it completes, until a "," asks for the next value.
      for (;;) {
        const inside = open.at(-1);
        if (inside === undefined) return;
        const close = inside === '{' ? '}' : ']';
        ws();
        if (text[i] === ',') {
          i++;
          if (inside === '{') key();
          break;
        }
        if (text[i] !== close) fail(`"," or "${close}"`);
        i++;
        open.pop();
      }
    }
  };
  try {
    value();
    ws();
    if (i < text.length) fail('the end of input');
    return null;
  } catch (problem) {
    if (typeof problem === 'object' && problem !== null && 'position' in problem) return problem as JsonProblem;
    throw problem;
  }
}
