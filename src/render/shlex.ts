/**
 * Python's `shlex.split(s)` in POSIX mode, which prefect-aws applies to a string container-override
 * `command` (via `prefect.utilities.processutils.command_from_string` on Linux): whitespace separates
 * words, single quotes keep everything literally, double quotes keep everything except `\"` and `\\`,
 * a backslash outside quotes escapes any character, and `''` is an empty word. No comments, no
 * expansion. https://docs.python.org/3/library/shlex.html#parsing-rules
 */

/** The command cannot be split; the message is Python's. */
export class ShlexError extends Error {}

const WHITESPACE = new Set([' ', '\t', '\r', '\n']);

export function shlexSplit(command: string): string[] {
  const words: string[] = [];
  let word = '';
  // A word has started even if it is still empty (`''`, or a quote right after whitespace).
  let inWord = false;
  let i = 0;
  const n = command.length;
  while (i < n) {
    const ch = command[i] as string;
    if (WHITESPACE.has(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (ch === '\\') {
      if (i + 1 >= n) throw new ShlexError('No escaped character');
      word += command[i + 1];
      inWord = true;
      i += 2;
    } else if (ch === "'") {
      const end = command.indexOf("'", i + 1);
      if (end === -1) throw new ShlexError('No closing quotation');
      word += command.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (ch === '"') {
      inWord = true;
      i++;
      for (;;) {
        if (i >= n) throw new ShlexError('No closing quotation');
        const c = command[i] as string;
        if (c === '"') {
          i++;
          break;
        }
        if (c === '\\') {
          if (i + 1 >= n) throw new ShlexError('No escaped character');
          const next = command[i + 1] as string;
          // Inside double quotes only the quote and the backslash itself can be escaped.
          word += next === '"' || next === '\\' ? next : `\\${next}`;
          i += 2;
        } else {
          word += c;
          i++;
        }
      }
    } else {
      word += ch;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}
