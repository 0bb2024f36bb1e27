// The .env grammar for the web admin: the twin of dotmage/dotenv.py.
//
// docs/dotenv-format.md is the grammar in words. Both implementations run the
// shared cases in tests/vectors/dotenv.json, so change them together. Error
// messages name line numbers and keys but never echo a line: lines hold secrets.

const BOM = "\ufeff";
const LINE_BREAK = /\r\n|\r|\n/g;
const BLANK_OR_COMMENT = /^[ \t]*(?:#[\s\S]*)?$/;
const ASSIGNMENT = /^[ \t]*(?:export[ \t]+)?([A-Za-z0-9_.-]+)[ \t]*=/;
const KEY = /^[A-Za-z0-9_.-]+$/;
const COMMENT_AFTER_SPACE = /[ \t]#/;
const PLAIN_VALUE = /^[A-Za-z0-9_@%+=:,./-]+$/;
const QUOTE_NAMES = { "'": "single", '"': "double", "`": "backtick" };
// \` is read and written so that a file dotMage writes stays safe to source:
// a shell runs a command in backticks even inside double quotes.
const DOUBLE_ESCAPES = { n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\", $: "$", "`": "`" };
const DOUBLE_SPECIAL = /[\\"\n\r$`]/g;
const DOUBLE_WRITTEN = {
  "\\": "\\\\",
  '"': '\\"',
  "\n": "\\n",
  "\r": "\\r",
  $: "\\$",
  "`": "\\`",
};

/** Text that is not valid dotenv, or a key or value that cannot be written. */
export class DotenvError extends Error {
  constructor(message, line = null) {
    super(line === null ? message : `line ${line}: ${message}`);
    this.name = "DotenvError";
    this.line = line;
  }
}

/** Turn the bytes of a file (Uint8Array) into text, honouring a byte order mark. */
export function decode(data) {
  if (data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) {
    data = data.subarray(3);
  } else if (startsWithUtf16Bom(data)) {
    return decodeUtf16(data);
  }
  const bad = firstInvalidUtf8(data);
  if (bad !== -1) {
    const before = new TextDecoder("utf-8").decode(data.subarray(0, bad));
    const line = (before.match(LINE_BREAK) || []).length + 1;
    throw new DotenvError("the file is not UTF-8 text; save it as UTF-8", line);
  }
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(data);
}

function startsWithUtf16Bom(data) {
  const [a, b] = data;
  return (a === 0xff && b === 0xfe) || (a === 0xfe && b === 0xff);
}

function decodeUtf16(data) {
  const codec = data[0] === 0xff ? "utf-16le" : "utf-16be";
  const decoder = new TextDecoder(codec, { fatal: true, ignoreBOM: true });
  try {
    return decoder.decode(data.subarray(2));
  } catch {
    const message = "the file has a UTF-16 byte order mark but is not UTF-16 text";
    throw new DotenvError(message);
  }
}

/** Offset where the first malformed UTF-8 sequence starts, or -1. */
function firstInvalidUtf8(data) {
  let i = 0;
  while (i < data.length) {
    const size = utf8SequenceLength(data, i);
    if (size === 0) return i;
    i += size;
  }
  return -1;
}

// Strict UTF-8 as Python decodes it: no overlong forms, no surrogates, nothing
// above U+10FFFF. Returns the length of the sequence at i, or 0 if malformed.
function utf8SequenceLength(data, i) {
  const lead = data[i];
  if (lead < 0x80) return 1;
  let size, low, high;
  if (lead >= 0xc2 && lead <= 0xdf) [size, low, high] = [2, 0x80, 0xbf];
  else if (lead === 0xe0) [size, low, high] = [3, 0xa0, 0xbf];
  else if (lead === 0xed) [size, low, high] = [3, 0x80, 0x9f];
  else if (lead >= 0xe1 && lead <= 0xef) [size, low, high] = [3, 0x80, 0xbf];
  else if (lead === 0xf0) [size, low, high] = [4, 0x90, 0xbf];
  else if (lead === 0xf4) [size, low, high] = [4, 0x80, 0x8f];
  else if (lead >= 0xf1 && lead <= 0xf3) [size, low, high] = [4, 0x80, 0xbf];
  else return 0;
  if (i + size > data.length || data[i + 1] < low || data[i + 1] > high) return 0;
  for (let k = 2; k < size; k++) {
    if (data[i + k] < 0x80 || data[i + k] > 0xbf) return 0;
  }
  return size;
}

/** Read every assignment in order, duplicates included: [{key, value, line}]. */
export function parse(text) {
  return scan(split(text).lines).map((assignment) => assignment.entry);
}

/** Collapse entries to a Map: the last duplicate wins, first-seen order. */
export function toDict(entries) {
  const values = new Map();
  for (const entry of entries) values.set(entry.key, entry.value);
  return values;
}

/** Cut text into lines, keeping each ending so edits can put it back. */
function split(text) {
  const bom = text.startsWith(BOM) ? BOM : "";
  const lines = [];
  let start = bom.length;
  LINE_BREAK.lastIndex = start;
  for (let match; (match = LINE_BREAK.exec(text)) !== null; ) {
    lines.push({ content: text.slice(start, match.index), ending: match[0] });
    start = match.index + match[0].length;
  }
  if (start < text.length) lines.push({ content: text.slice(start), ending: "" });
  return { bom, lines };
}

function scan(lines) {
  const found = [];
  let index = 0;
  while (index < lines.length) {
    if (BLANK_OR_COMMENT.test(lines[index].content)) {
      index += 1;
      continue;
    }
    const assignment = readAssignment(lines, index);
    found.push(assignment);
    index = assignment.last + 1;
  }
  return found;
}

function readAssignment(lines, index) {
  const content = lines[index].content;
  const match = ASSIGNMENT.exec(content);
  if (match === null) {
    if (!content.includes("=")) {
      throw new DotenvError("not an assignment: expected KEY=value", index + 1);
    }
    const message = "invalid key: use letters, digits, _, . and - before the =";
    throw new DotenvError(message, index + 1);
  }
  const start = match[0].length;
  const opener = content.length - trimStart(content.slice(start)).length;
  if (Object.hasOwn(QUOTE_NAMES, content[opener] ?? "")) {
    return readQuoted(lines, index, match[1], opener);
  }
  return readBare(content, index, match[1], start);
}

function readBare(content, index, key, start) {
  let raw = content.slice(start);
  const comment = COMMENT_AFTER_SPACE.exec(raw);
  if (comment !== null) raw = raw.slice(0, comment.index);
  const value = trim(raw);
  // An empty value keeps its spaces in the tail, so a replacement cannot
  // end up glued to a following "#" (which would then be part of the value).
  const valueAt = value ? start + raw.length - trimStart(raw).length : start;
  const head = content.slice(0, valueAt);
  const tail = content.slice(valueAt + value.length);
  const entry = { key, value, line: index + 1 };
  return { entry, first: index, last: index, head, tail };
}

function readQuoted(lines, index, key, opener) {
  const quoteChar = lines[index].content[opener];
  const start = opener + 1;
  const { value, last, end } = readQuotedValue(lines, index, start, quoteChar);
  const tail = lines[last].content.slice(end);
  const after = trim(tail);
  if (after !== "" && !after.startsWith("#")) {
    const message = "unexpected text after the closing quote (a comment needs #)";
    throw new DotenvError(message, last + 1);
  }
  const head = lines[index].content.slice(0, opener);
  return { entry: { key, value, line: index + 1 }, first: index, last, head, tail };
}

/** Read up to the closing quote, crossing lines. */
function readQuotedValue(lines, index, column, quoteChar) {
  const parts = [];
  let last = index;
  let content = lines[index].content;
  for (;;) {
    const stop = nextSpecial(content, column, quoteChar);
    parts.push(content.slice(column, stop));
    column = stop;
    if (column < content.length && content[column] === quoteChar) {
      return { value: parts.join(""), last, end: column + 1 };
    }
    if (column < content.length) {
      const [text, next] = unescape(content, column, quoteChar);
      parts.push(text);
      column = next;
      continue;
    }
    last += 1;
    if (last === lines.length) {
      const message = `unterminated ${QUOTE_NAMES[quoteChar]}-quoted value`;
      throw new DotenvError(message, index + 1);
    }
    parts.push("\n");
    content = lines[last].content;
    column = 0;
  }
}

function nextSpecial(content, column, quoteChar) {
  let i = column;
  while (i < content.length && content[i] !== quoteChar && content[i] !== "\\") i++;
  return i;
}

/** Read the backslash at column; unknown escapes keep their backslash. */
function unescape(content, column, quoteChar) {
  const following = content.slice(column + 1, column + 2);
  if (following === quoteChar) return [quoteChar, column + 2];
  if (quoteChar === '"' && Object.hasOwn(DOUBLE_ESCAPES, following)) {
    return [DOUBLE_ESCAPES[following], column + 2];
  }
  return ["\\", column + 1];
}

function trimStart(text) {
  return text.replace(/^[ \t]+/, "");
}

function trim(text) {
  return trimStart(text).replace(/[ \t]+$/, "");
}

/** Write value so that parse() reads it back exactly, as plainly as is safe. */
export function quote(value) {
  if (PLAIN_VALUE.test(value)) return value;
  if (fitsSingleQuotes(value)) return `'${value}'`;
  return `"${value.replace(DOUBLE_SPECIAL, (ch) => DOUBLE_WRITTEN[ch])}"`;
}

function fitsSingleQuotes(value) {
  // A trailing backslash would turn the closing quote into an escaped one,
  // and a real line break would come back as LF whatever it was.
  const unsafe = value.includes("'") || value.includes("\n") || value.includes("\r");
  return !unsafe && !value.endsWith("\\");
}

function pairsOf(pairs) {
  return pairs instanceof Map ? [...pairs] : Object.entries(pairs);
}

/** Write values (a Map or an object) as a fresh file, one KEY=value line each. */
export function render(pairs) {
  return pairsOf(pairs)
    .map(([key, value]) => assignmentLine(key, value, "\n"))
    .join("");
}

function assignmentLine(key, value, ending) {
  if (!KEY.test(key)) {
    const name = JSON.stringify(key);
    throw new DotenvError(`invalid key ${name}: use letters, digits, _, . and -`);
  }
  return `${key}=${quote(value)}${ending}`;
}

/** Change values in place, keeping every other line byte for byte. */
export function setValues(text, updates) {
  const wanted = new Map(pairsOf(updates));
  const { bom, lines } = split(text);
  const lastOf = new Map(scan(lines).map((a) => [a.entry.key, a]));
  const targets = new Map();
  for (const [key, a] of lastOf) if (wanted.has(key)) targets.set(a.first, a);
  const out = [bom];
  for (let index = 0; index < lines.length; ) {
    const target = targets.get(index);
    if (target === undefined) {
      out.push(lines[index].content + lines[index].ending);
      index += 1;
      continue;
    }
    const value = wanted.get(target.entry.key);
    out.push(reassigned(target, value) + lines[target.last].ending);
    index = target.last + 1;
  }
  const newKeys = [...wanted].filter(([key]) => !lastOf.has(key));
  return append(out.join(""), newKeys, firstEnding(lines));
}

function reassigned(assignment, value) {
  let tail = assignment.tail;
  // After a closing quote "#" needs no space; after a bare value it does.
  if (tail.startsWith("#")) tail = " " + tail;
  return assignment.head + quote(value) + tail;
}

function firstEnding(lines) {
  const line = lines.find((l) => l.ending !== "");
  return line === undefined ? "\n" : line.ending;
}

function append(text, pairs, ending) {
  const added = pairs.map(([key, value]) => assignmentLine(key, value, ending));
  const unfinished = text !== "" && !/[\r\n]$/.test(text);
  if (added.length > 0 && unfinished) text += ending;
  return text + added.join("");
}

/** Remove every assignment of keys, all its lines, keeping the rest as is. */
export function unsetKeys(text, keys) {
  const doomed = new Set(keys);
  const { bom, lines } = split(text);
  const removed = new Set();
  for (const a of scan(lines)) {
    if (!doomed.has(a.entry.key)) continue;
    for (let i = a.first; i <= a.last; i++) removed.add(i);
  }
  const kept = lines.filter((_, index) => !removed.has(index));
  return bom + kept.map((line) => line.content + line.ending).join("");
}
