"""Tests for the .env grammar: shared vectors, exact edits, and properties."""

import base64
import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dotmage.dotenv import (
    Diff,
    DotenvError,
    Entry,
    compare,
    decode,
    formatting_changes,
    is_key,
    parse,
    parse_bytes,
    quote,
    render,
    set_values,
    to_dict,
    to_json,
    to_shell,
    unset_keys,
)

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "tests/vectors/dotenv.json").read_text("utf-8"))
WRITTEN = "how values are written (quoting, spacing, export, order)"


def vector_text(case: dict) -> str:
    if "input_b64" in case:
        return decode(base64.b64decode(case["input_b64"]))
    return case["input"]


# The shared vectors (static/js/dotenv.js runs the same file).


def test_vectors_are_plentiful_and_uniquely_named():
    names = [case["name"] for case in VECTORS]
    assert len(names) >= 50
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_vector(case):
    if "error_line" in case:
        with pytest.raises(DotenvError) as caught:
            parse(vector_text(case))
        assert caught.value.line == case["error_line"]
        assert str(caught.value).startswith(f"line {case['error_line']}: ")
    else:
        got = to_dict(parse(vector_text(case)))
        assert [[key, value] for key, value in got.items()] == case["expected"]


# Parsing, exactly.


def test_parse_keeps_duplicates_with_their_start_lines():
    text = "# c\nA=1\nB='x\ny'\nA=2\n"
    assert parse(text) == [
        Entry("A", "1", 2),
        Entry("B", "x\ny", 3),
        Entry("A", "2", 5),
    ]


def test_error_names_the_line_but_never_echoes_it():
    with pytest.raises(DotenvError) as caught:
        parse("OK=1\nhunter2 secret\n")
    assert caught.value.line == 2
    assert "hunter2" not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_error_is_a_value_error():
    assert issubclass(DotenvError, ValueError)


def test_decode_reports_non_utf8_with_its_line():
    with pytest.raises(DotenvError) as caught:
        decode(b"A=1\nB=\xff\n")
    assert str(caught.value) == "line 2: the file is not UTF-8 text; save it as UTF-8"


def test_decode_rejects_broken_utf16():
    with pytest.raises(DotenvError) as caught:
        decode(b"\xff\xfeA\x00=")
    assert caught.value.line is None
    assert "UTF-16" in str(caught.value)


def test_decode_drops_bom_so_the_first_key_keeps_its_name():
    assert parse_bytes(b"\xef\xbb\xbfAPI_KEY=1\n") == {"API_KEY": "1"}
    assert parse_bytes("API_KEY=1\n".encode("utf-16")) == {"API_KEY": "1"}


# Writing values.


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain-1.2_3", "plain-1.2_3"),
        ("YWJj+/==", "YWJj+/=="),
        ("user@host:5432/db,x%20", "user@host:5432/db,x%20"),
        ("", "''"),
        ("two words", "'two words'"),
        (" padded ", "' padded '"),
        ('a#b $X "q" `b`', "'a#b $X \"q\" `b`'"),
        ("back\\slash", "'back\\slash'"),
        ("trailing\\", '"trailing\\\\"'),
        ("it's", '"it\'s"'),
        ("a\nb", '"a\\nb"'),
        ("cr\r", '"cr\\r"'),
        ('it\'s $5 \\ "x"', '"it\'s \\$5 \\\\ \\"x\\""'),
        ("héllo", "'héllo'"),
    ],
)
def test_quote_picks_the_plainest_safe_form(value, written):
    assert quote(value) == written
    assert parse(f"K={written}") == [Entry("K", value, 1)]


def test_render_writes_one_line_per_key():
    rendered = render({"A": "1", "B": "x y", "C": "a\nb"})
    assert rendered == "A=1\nB='x y'\nC=\"a\\nb\"\n"


def test_render_rejects_invalid_key():
    with pytest.raises(DotenvError, match="invalid key 'MY KEY'"):
        render({"MY KEY": "1"})


# Editing in place.


def test_set_values_keeps_crlf_export_and_comments():
    text = "# db\r\nexport PORT = 8000 # the port\r\nHOST=x\r\n"
    updated = set_values(text, {"PORT": "9000"})
    assert updated == "# db\r\nexport PORT = 9000 # the port\r\nHOST=x\r\n"


def test_set_values_replaces_a_multiline_value_with_one_line():
    text = 'A=1\nKEY="line1\nline2" # pem\nB=2\n'
    assert set_values(text, {"KEY": "new"}) == "A=1\nKEY=new # pem\nB=2\n"


def test_set_values_changes_only_the_last_duplicate():
    text = "A=1\nA=2\n"
    updated = set_values(text, {"A": "3"})
    assert updated == "A=1\nA=3\n"
    assert to_dict(parse(updated)) == {"A": "3"}


def test_set_values_separates_a_value_from_a_glued_comment():
    assert set_values('A="x"#note\n', {"A": "y"}) == "A=y #note\n"
    assert set_values("E=   # fill me\n", {"E": "v"}) == "E=v   # fill me\n"


def test_set_values_appends_new_keys_after_a_missing_newline():
    assert set_values("A=1", {"B": "two words"}) == "A=1\nB='two words'\n"
    assert set_values("", {"B": "2"}) == "B=2\n"


def test_set_values_appends_with_the_file_line_ending():
    assert set_values("A=1\r\n", {"B": "2"}) == "A=1\r\nB=2\r\n"


def test_set_values_keeps_the_bom():
    assert set_values("\ufeffA=1\n", {"A": "2"}) == "\ufeffA=2\n"


def test_set_values_refuses_text_it_cannot_parse():
    with pytest.raises(DotenvError):
        set_values("A=1\nbroken\n", {"A": "2"})


def test_unset_keys_removes_every_assignment_and_all_its_lines():
    text = "A=1\r\nK='x\ny'\r\n# keep\r\nK=2\nB=3"
    assert unset_keys(text, ["K"]) == "A=1\r\n# keep\r\nB=3"


def test_unset_keys_ignores_absent_keys():
    assert unset_keys("A=1\n", {"Z"}) == "A=1\n"


# Export formats.


def test_to_shell_single_quotes_everything():
    shell = to_shell({"A": "it's", "B": "$HOME `x`"})
    assert shell == "export A='it'\\''s'\nexport B='$HOME `x`'\n"


@pytest.mark.parametrize("key", ["go-version", "a.b", "1A"])
def test_to_shell_names_keys_shells_cannot_hold(key):
    with pytest.raises(DotenvError, match=repr(key)):
        to_shell({"OK": "1", key: "x"})


def test_to_shell_refuses_nul():
    with pytest.raises(DotenvError, match="NUL"):
        to_shell({"A": "a\0b"})


TRICKY_VALUES = ["it's", "a\nb", "cr\r", "$HOME", "`id`", "\\", "'", "", " x "]


@pytest.mark.parametrize("shell", ["sh", "bash", "zsh"])
def test_to_shell_survives_a_real_shell(shell):
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    pairs = {f"V{i}": value for i, value in enumerate(TRICKY_VALUES)}
    printer = "".join(f'printf "%s\\0" "$V{i}";' for i in range(len(pairs)))
    script = to_shell(pairs) + printer
    out = subprocess.run([shell, "-c", script], capture_output=True, check=True)
    assert out.stdout.decode().split("\0")[:-1] == TRICKY_VALUES


def test_to_json_keeps_order_and_unicode():
    assert to_json({"B": "é", "A": "1"}) == '{\n  "B": "é",\n  "A": "1"\n}\n'


# Diff.


def test_compare_ignores_comments_and_line_endings():
    diff = compare("A=1\nB=2\n", "# new comment\r\nA='1'\r\nB=2\r\n")
    assert diff == Diff(added=[], removed=[], changed=[], only_formatting=True)


def test_compare_lists_sorted_keys():
    diff = compare("Z=1\nA=1\nM=1\n", "M=2\nY=1\nB=1\n")
    assert diff == Diff(
        added=["B", "Y"], removed=["A", "Z"], changed=["M"], only_formatting=False
    )


def test_compare_identical_texts_is_not_formatting():
    assert compare("A=1\n", "A=1\n").only_formatting is False


@pytest.mark.parametrize(
    ("old", "new", "changes"),
    [
        ("A=1\n", "A=1\r\n", ["line endings"]),
        ("A=1\n", "\ufeffA=1\n", ["byte order mark"]),
        ("A=1\n", "A=1", ["final line break"]),
        ("A=1", "A=1\r\n", ["final line break"]),
        ("A=1\r\nB=2\n", "A=1\nB=2\r\n", ["line endings"]),
        ("A=1\n", "# note\n\nA=1\n", ["comments or blank lines"]),
        ("A=1\nB=2\n", "B=2\nA=1\n", [WRITTEN]),
        ("A=1\n", "export A = '1' # one\n", [WRITTEN]),
        ("A=1\n", "\ufeff# c\r\nA=1\r\n", [
            "byte order mark", "line endings", "comments or blank lines"
        ]),
        ("P='x\n# y'\n", "P='x\n# y'\n\n", ["comments or blank lines"]),
        ("A=1\n", "A=1\n", []),
    ],
)  # fmt: skip
def test_formatting_changes_name_what_differs(old, new, changes):
    assert formatting_changes(old, new) == changes


def test_a_hash_line_inside_a_quoted_value_counts_as_the_assignment():
    changes = formatting_changes("P='x\n# y'\n", "P='x\n# z'\n")
    assert changes == [WRITTEN]


@pytest.mark.parametrize("name", ["A", "go-version", "a.b", "_", "123", "x" * 200])
def test_is_key_accepts_the_key_charset(name):
    assert is_key(name)


@pytest.mark.parametrize("name", ["", "MY KEY", "A$B", "export A", "A=", "é", "A\n"])
def test_is_key_refuses_everything_else(name):
    assert not is_key(name)


# Properties.

KEYS = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)
TRICKY = st.sampled_from(list("'\"`\\#$=\r\n\t {} ") + ["\r\n", "\u2028", "\ufeff"])
PIECES = st.one_of(st.characters(exclude_categories=["Cs"]), TRICKY)
VALUES = st.lists(PIECES).map("".join)


@given(st.dictionaries(KEYS, VALUES, max_size=8))
@settings(max_examples=300)
def test_render_then_parse_gives_the_same_values(pairs):
    assert to_dict(parse(render(pairs))) == pairs


@given(VALUES)
def test_quote_round_trips_any_value(value):
    assert parse("K=" + quote(value)) == [Entry("K", value, 1)]


@given(st.lists(st.one_of(st.characters(), TRICKY)).map("".join))
@settings(max_examples=500)
def test_parse_raises_only_dotenv_errors(text):
    try:
        parse(text)
    except DotenvError as error:
        assert error.line is not None and error.line >= 1


@given(st.binary())
def test_decode_raises_only_dotenv_errors(data):
    try:
        text = decode(data)
    except DotenvError as error:
        assert "UTF" in str(error)
        return
    assert isinstance(text, str)


@given(st.text())
def test_decode_reads_utf8_and_utf16_back(text):
    if not text.startswith("\ufeff"):
        assert decode(text.encode("utf-8")) == text
    assert decode("\ufeff".encode() + text.encode("utf-8")) == text
    assert decode(text.encode("utf-16")) == text


ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])
OTHER_LINES = st.one_of(
    # No empty line: after a lone CR its "\n" would fuse into one CRLF ending.
    st.sampled_from(["# note", "  ", "export OTHER = 'x' # c", 'B="m\nn"']),
    st.builds(lambda k, v: f"O{k}={quote(v)}", KEYS, VALUES),
)


@st.composite
def file_with_target(draw):
    """A file as segments, exactly one of which assigns TARGET."""
    count = draw(st.integers(1, 6))
    lines = draw(st.lists(OTHER_LINES, min_size=count, max_size=count))
    endings = draw(st.lists(ENDINGS, min_size=count, max_size=count))
    segments = [a + b for a, b in zip(lines, endings, strict=True)]
    target = draw(st.sampled_from(["TARGET=old", "export TARGET='o\nld' # c"]))
    at = draw(st.integers(0, count))
    segments.insert(at, target + draw(ENDINGS))
    return segments, at


@given(file_with_target(), VALUES)
def test_set_values_keeps_other_lines_byte_for_byte(drawn, value):
    segments, at = drawn
    updated = set_values("".join(segments), {"TARGET": value})
    assert updated.startswith("".join(segments[:at]))
    assert updated.endswith("".join(segments[at + 1 :]))
    expected = to_dict(parse("".join(segments))) | {"TARGET": value}
    assert to_dict(parse(updated)) == expected


@given(file_with_target())
def test_unset_keys_keeps_other_lines_byte_for_byte(drawn):
    segments, at = drawn
    updated = unset_keys("".join(segments), ["TARGET"])
    assert updated == "".join(segments[:at] + segments[at + 1 :])


# Python and JavaScript agree beyond the vectors.

JS_ECHO = """
import { readFileSync } from "node:fs";
import { parse, quote } from "./static/js/dotenv.js";
const values = JSON.parse(readFileSync(0, "utf8"));
const quoted = values.map(quote);
const parsed = parse(quoted.map((q, i) => `K${i}=${q}\\n`).join(""));
console.log(JSON.stringify({ quoted, parsed: parsed.map((e) => e.value) }));
"""


def test_javascript_quotes_and_parses_like_python():
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    rng = random.Random(7)
    alphabet = "aZ09 _-.=#$'\"`\\\r\n\té🔑\u2028"
    values = ["".join(rng.choices(alphabet, k=rng.randint(0, 12))) for _ in range(500)]
    out = subprocess.run(
        ["node", "--input-type=module", "-e", JS_ECHO],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    answer = json.loads(out.stdout)
    assert answer["quoted"] == [quote(value) for value in values]
    assert answer["parsed"] == values


def test_a_rendered_file_sourced_by_sh_runs_nothing_and_keeps_the_value(tmp_path):
    import subprocess

    value = 'it\'s `touch PWNED` and $(touch PWNED2) $HOME \\ "q"'
    (tmp_path / ".env").write_text(render({"V": value}))
    sourced = subprocess.run(
        ["sh", "-c", 'set -a; . ./.env; printf %s "$V"'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert sourced.stdout == value
    assert not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "PWNED2").exists()
