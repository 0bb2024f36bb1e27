// Tests for static/js/dotenv.js: the shared vectors, then exact quoting and edits.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  DotenvError,
  decode,
  parse,
  quote,
  render,
  setValues,
  toDict,
  unsetKeys,
} from "../../static/js/dotenv.js";

const vectorsUrl = new URL("../vectors/dotenv.json", import.meta.url);
const VECTORS = JSON.parse(readFileSync(vectorsUrl, "utf8"));

function vectorText(vector) {
  if (!("input_b64" in vector)) return vector.input;
  return decode(new Uint8Array(Buffer.from(vector.input_b64, "base64")));
}

test("the shared vectors are all here", () => {
  assert.ok(VECTORS.length >= 50);
});

for (const vector of VECTORS) {
  test(`vector: ${vector.name}`, () => {
    if ("error_line" in vector) {
      assert.throws(
        () => parse(vectorText(vector)),
        (error) =>
          error instanceof DotenvError &&
          error.line === vector.error_line &&
          error.message.startsWith(`line ${vector.error_line}: `),
      );
    } else {
      assert.deepEqual([...toDict(parse(vectorText(vector)))], vector.expected);
    }
  });
}

test("parse keeps duplicates with their start lines", () => {
  assert.deepEqual(parse("# c\nA=1\nB='x\ny'\nA=2\n"), [
    { key: "A", value: "1", line: 2 },
    { key: "B", value: "x\ny", line: 3 },
    { key: "A", value: "2", line: 5 },
  ]);
});

test("errors name the line but never echo it", () => {
  assert.throws(
    () => parse("OK=1\nhunter2 secret\n"),
    (error) => error.line === 2 && !error.message.includes("hunter2"),
  );
});

test("decode names the line of a byte that is not UTF-8", () => {
  const bytes = new Uint8Array([0x41, 0x3d, 0x31, 0x0a, 0x42, 0x3d, 0xff, 0x0a]);
  assert.throws(() => decode(bytes), {
    message: "line 2: the file is not UTF-8 text; save it as UTF-8",
  });
});

// The same table as test_quote_picks_the_plainest_safe_form in Python.
const QUOTED = [
  ["plain-1.2_3", "plain-1.2_3"],
  ["YWJj+/==", "YWJj+/=="],
  ["user@host:5432/db,x%20", "user@host:5432/db,x%20"],
  ["", "''"],
  ["two words", "'two words'"],
  [" padded ", "' padded '"],
  ['a#b $X "q" `b`', "'a#b $X \"q\" `b`'"],
  ["back\\slash", "'back\\slash'"],
  ["trailing\\", '"trailing\\\\"'],
  ["it's", '"it\'s"'],
  ["a\nb", '"a\\nb"'],
  ["cr\r", '"cr\\r"'],
  ['it\'s $5 \\ "x"', '"it\'s \\$5 \\\\ \\"x\\""'],
  ["héllo", "'héllo'"],
];

for (const [value, written] of QUOTED) {
  test(`quote ${JSON.stringify(value)}`, () => {
    assert.equal(quote(value), written);
    assert.deepEqual(parse(`K=${written}`), [{ key: "K", value, line: 1 }]);
  });
}

test("render writes one line per key, from a Map or an object", () => {
  const expected = "A=1\nB='x y'\nC=\"a\\nb\"\n";
  assert.equal(render({ A: "1", B: "x y", C: "a\nb" }), expected);
  assert.equal(render(new Map([["A", "1"], ["B", "x y"], ["C", "a\nb"]])), expected);
});

test("render keeps digit keys in their order", () => {
  assert.equal(render(new Map([["B", "1"], ["2", "x"]])), "B=1\n2=x\n");
});

test("render rejects an invalid key", () => {
  assert.throws(() => render({ "MY KEY": "1" }), DotenvError);
});

test("setValues keeps CRLF, export and comments", () => {
  const text = "# db\r\nexport PORT = 8000 # the port\r\nHOST=x\r\n";
  assert.equal(
    setValues(text, { PORT: "9000" }),
    "# db\r\nexport PORT = 9000 # the port\r\nHOST=x\r\n",
  );
});

test("setValues replaces a multiline value and only the last duplicate", () => {
  const text = 'A=1\nKEY="l1\nl2" # pem\nB=2\n';
  assert.equal(setValues(text, { KEY: "new" }), "A=1\nKEY=new # pem\nB=2\n");
  assert.equal(setValues("A=1\nA=2\n", { A: "3" }), "A=1\nA=3\n");
});

test("setValues separates a value from a glued comment", () => {
  assert.equal(setValues('A="x"#note\n', { A: "y" }), "A=y #note\n");
  assert.equal(setValues("E=   # fill me\n", { E: "v" }), "E=v   # fill me\n");
});

test("setValues appends new keys with the file's line ending", () => {
  assert.equal(setValues("A=1", { B: "two words" }), "A=1\nB='two words'\n");
  assert.equal(setValues("A=1\r\n", { B: "2" }), "A=1\r\nB=2\r\n");
  assert.equal(setValues("", { B: "2" }), "B=2\n");
  assert.equal(setValues("\ufeffA=1\n", { A: "2" }), "\ufeffA=2\n");
});

test("unsetKeys removes every assignment and all its lines", () => {
  const text = "A=1\r\nK='x\ny'\r\n# keep\r\nK=2\nB=3";
  assert.equal(unsetKeys(text, ["K"]), "A=1\r\n# keep\r\nB=3");
  assert.equal(unsetKeys("A=1\n", new Set(["Z"])), "A=1\n");
});
