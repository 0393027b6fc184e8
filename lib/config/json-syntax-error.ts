// Where JSON that JSON.parse refused goes wrong, and what was expected there, without quoting
// the text. Node's own message quotes the text around the error (`Unexpected token 's',
// ..."assword": s3cret, "a"... is not valid JSON`) and gives no position for that case, so a
// configuration file's syntax error would print the password beside it. This scanner walks the
// JSON grammar (RFC 8259) with an explicit stack (no recursion limit on deep nesting) and stops
// at the first character that cannot continue a valid document.

export interface JsonSyntaxError {
  /** Offset of the offending character (text.length at an early end). */
  position: number;
  line: number;
  column: number;
  /** What the grammar allowed there, e.g. `',' or '}' after a value`. */
  expected: string;
  /** What was there, by kind: a structural character is named, anything else only described. */
  found: string;
}

type State = 'value' | 'key' | 'after-value';

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);
const STRUCTURAL = new Set(['{', '}', '[', ']', ',', ':', '"']);
const ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);
const VALUE = 'a value (a "string", a number, true, false, null, an object or a list)';

/** Describe what is at `i` without showing it unless it is JSON punctuation. */
function foundAt(text: string, i: number): string {
  if (i >= text.length) return 'the end of the file';
  const c = text[i];
  if (STRUCTURAL.has(c)) return `'${c}'`;
  if (c === "'") return 'a single quote (JSON strings take double quotes)';
  if (/[A-Za-z]/.test(c)) return 'a letter';
  if (/[0-9]/.test(c)) return 'a digit';
  if (c.charCodeAt(0) < 0x20) return 'a control character';
  return 'another character';
}

function at(text: string, position: number, expected: string): JsonSyntaxError {
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  return { position, line, column: position - before.lastIndexOf('\n'), expected, found: foundAt(text, position) };
}

/** End of the string starting at `i` (a '"'), or the error inside it. */
function scanString(text: string, i: number): number | JsonSyntaxError {
  for (let j = i + 1; j < text.length; j++) {
    const c = text[j];
    if (c === '"') return j + 1;
    if (c.charCodeAt(0) < 0x20) return at(text, j, "a closing '\"' (a control character in a string must be escaped, e.g. \\n)");
    if (c === '\\') {
      const e = text[j + 1];
      if (e === 'u') {
        if (!/^[0-9A-Fa-f]{4}$/.test(text.slice(j + 2, j + 6))) return at(text, j + 2, 'four hex digits after \\u');
        j += 5;
      } else if (e !== undefined && ESCAPES.has(e)) j += 1;
      else return at(text, j + 1, 'an escape: \\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX');
    }
  }
  return at(text, text.length, "a closing '\"'");
}

/** End of the number starting at `i`, or the error inside it. */
function scanNumber(text: string, i: number): number | JsonSyntaxError {
  let j = i;
  const digits = () => {
    const start = j;
    while (j < text.length && text[j] >= '0' && text[j] <= '9') j++;
    return j > start;
  };
  if (text[j] === '-') j++;
  if (text[j] === '0') j++;
  else if (!digits()) return at(text, j, 'a digit');
  if (text[j] === '.') {
    j++;
    if (!digits()) return at(text, j, 'a digit after the decimal point');
  }
  if (text[j] === 'e' || text[j] === 'E') {
    j++;
    if (text[j] === '+' || text[j] === '-') j++;
    if (!digits()) return at(text, j, 'a digit in the exponent');
  }
  return j;
}

/** The first syntax error of `text`, or null when it is valid JSON. */
export function findJsonSyntaxError(text: string): JsonSyntaxError | null {
  const stack: ('object' | 'array')[] = [];
  let state: State = 'value';
  let i = 0;
  for (;;) {
    while (i < text.length && WHITESPACE.has(text[i])) i++;
    const c = text[i];
    if (state === 'value') {
      if (c === '{' || c === '[') {
        i++;
        while (i < text.length && WHITESPACE.has(text[i])) i++;
        if (text[i] === (c === '{' ? '}' : ']')) {
          i++;
          state = 'after-value';
        } else {
          stack.push(c === '{' ? 'object' : 'array');
          state = c === '{' ? 'key' : 'value';
        }
        continue;
      }
      let end: number | JsonSyntaxError;
      if (c === '"') end = scanString(text, i);
      else if (c === '-' || (c >= '0' && c <= '9')) end = scanNumber(text, i);
      else {
        const word = ['true', 'false', 'null'].find((w) => text.startsWith(w, i));
        end = word ? i + word.length : at(text, i, VALUE);
      }
      if (typeof end !== 'number') return end;
      i = end;
      state = 'after-value';
    } else if (state === 'key') {
      if (c !== '"') return at(text, i, 'a "quoted" key (no comma after the last member)');
      const end = scanString(text, i);
      if (typeof end !== 'number') return end;
      i = end;
      while (i < text.length && WHITESPACE.has(text[i])) i++;
      if (text[i] !== ':') return at(text, i, "':' after the key");
      i++;
      state = 'value';
    } else {
      const top = stack[stack.length - 1];
      if (top === undefined) return i < text.length ? at(text, i, 'the end of the file after the value') : null;
      const close = top === 'object' ? '}' : ']';
      if (c === ',') {
        i++;
        state = top === 'object' ? 'key' : 'value';
      } else if (c === close) {
        i++;
        stack.pop();
      } else return at(text, i, `',' or '${close}' after a value`);
    }
  }
}

/**
 * JSON.parse's refusal as "line L column C: expected …, found …", quoting nothing of the text.
 * Should the scanner ever accept what JSON.parse refused, only Node's position is kept.
 */
export function describeJsonSyntaxError(text: string, err: Error): string {
  const found = findJsonSyntaxError(text);
  if (found) return `invalid JSON at line ${found.line} column ${found.column}: expected ${found.expected}, found ${found.found}`;
  const position = /at position ([0-9]+)/.exec(err.message);
  if (position === null) return 'invalid JSON';
  const { line, column } = at(text, Number(position[1]), '');
  return `invalid JSON at line ${line} column ${column}`;
}
