"""The .env grammar through the real CLI and a real server: bytes and values.

One server per database for the whole module (tests use their own apps), so
the shared vectors can each be pushed, pulled, exec'd and read with get
without starting a server per case.
"""

import base64
import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import Device, fresh_database, start_server

from dotmage import dotenv

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "dotenv.json").read_text("utf-8")
)
VALID = [case for case in VECTORS if "error_line" not in case]
INVALID = [case for case in VECTORS if "error_line" in case]
WORKERS = 3

# A child that reports the named variables exactly, as JSON (None when unset).
PRINT_ENV = (
    "import json, os, sys; "
    "sys.stdout.write(json.dumps({k: os.environ.get(k) for k in sys.argv[1:]}))"
)
UTF8_CHILD = {"PYTHONUTF8": "1"}

# Values that break naive .env tools, each set through argv.
TRICKY = {
    "DQ": 'say "hi"',
    "SQ": "it's",
    "BOTH": 'it\'s "both" `and` $this',
    "HASH": "a #b",
    "HASH_FIRST": "#start",
    "DOLLAR": "$HOME ${A:-b} $(id) \\$",
    "BACKTICKS": "`id`",
    "NEWLINES": "line1\nline2\n",
    "CRLF": "a\r\nb",
    "WINDOWS_PATH": "C:\\path\\to\\",
    "BACKSLASH_N": "a\\nb",
    "PADDED": "  padded  ",
    "EMPTY": "",
    "UNICODE": "héllo ✓ 🔑",
    "EQUALS": "YWJj==",
    "BANG": "!x !! ^ ~ & ; | < > * ? [ ] { }",
}


# -- one server and signed-in devices for the module ------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dotenv_server(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dotenv-server")
    with fresh_database(request.param, folder) as url:
        running = start_server(folder, url)
        yield running
        running.stop()


@pytest.fixture(scope="module")
def devices(dotenv_server, tmp_path_factory):
    """Factory: devices('name') -> a signed-in Device, made once per module."""
    folder = tmp_path_factory.mktemp("devices")
    made = {}

    def get(name: str) -> Device:
        if name not in made:
            home, work = folder / f"{name}-home", folder / f"{name}-work"
            device = Device(home, work, dotenv_server)
            device.environment["DOTMAGE_DEVICE_NAME"] = name
            device.auth()
            made[name] = device
        return made[name]

    return get


@pytest.fixture
def device(devices, tmp_path):
    """The module's laptop, working in a fresh folder for this test."""
    laptop = devices("laptop")
    laptop.cwd = tmp_path / "work"
    laptop.cwd.mkdir()
    return laptop


def vector_bytes(case: dict) -> bytes:
    if "input_b64" in case:
        return base64.b64decode(case["input_b64"])
    return case["input"].encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def child_environment(device: Device, app: str, keys, *flags) -> dict:
    result = device.run(
        "exec", app, *flags, "--", sys.executable, "-c", PRINT_ENV, *keys,
        env=UTF8_CHILD,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("dmage:")]


def latest_revision(device: Device, app: str, *flags) -> int:
    history = device.run("history", app, "--json", *flags, check=0)
    return history.json()["latest_revision"]


# -- every shared vector, end to end ----------------------------------------------


def _check_valid_vectors(device: Device, app: str, cases: list) -> list[str]:
    """Push each case in turn to one app; return what went wrong, if anything."""
    problems = []
    for number, case in enumerate(cases):
        command = "push" if number else "init"
        found = _check_one(device, app, case, command)
        problems += [f"{case['name']}: {problem}" for problem in found]
        if not number and found:
            break  # without revision 1 the rest cannot push
    return problems


def _check_one(device: Device, app: str, case: dict, command: str) -> list[str]:
    data = vector_bytes(case)
    expected = dict(case["expected"])
    stored = data
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        stored = dotenv.decode(data).encode("utf-8")
    device.write(".env", data)

    pushed = device.run(command, app)
    if pushed.code != 0:
        return [f"{command} exited {pushed.code}: {pushed.stderr.strip()}"]
    problems = []

    pulled = device.run("pull", app, "--stdout").stdout_bytes
    if sha256(pulled) != sha256(stored):
        problems.append(f"pulled {pulled!r}, pushed {stored!r}")
    seen = child_environment(device, app, expected)
    if seen != expected:
        problems.append(f"exec child saw {seen!r}, wanted {expected!r}")
    for key, value in expected.items():
        got = device.run("get", app, key).stdout_bytes
        if got != (value + "\n").encode("utf-8"):
            problems.append(f"get {key} printed {got!r}, wanted {value!r}")
    return problems


def test_every_valid_vector_is_stored_byte_for_byte_and_read_exactly(devices):
    shares = [VALID[index::WORKERS] for index in range(WORKERS)]
    workers = [devices(f"vectors-{index}") for index in range(WORKERS)]
    with ThreadPoolExecutor(WORKERS) as pool:
        found = pool.map(
            _check_valid_vectors,
            workers,
            [f"vectors/{index}" for index in range(WORKERS)],
            shares,
        )
    problems = [problem for share in found for problem in share]
    assert problems == []
    assert sum(len(share) for share in shares) == len(VALID) >= 60


def test_every_invalid_vector_fails_on_its_line_and_pushes_nothing(device):
    device.write(".env", "KEPT=1\n")
    device.run("init", "vectors/invalid", check=0)

    problems = []
    for case in INVALID:
        device.write(".env", vector_bytes(case))
        result = device.run("push", "vectors/invalid")
        messages = error_lines(result)
        wanted = f"line {case['error_line']}: "
        if result.code != 1 or len(messages) != 1 or wanted not in messages[0]:
            problems.append(f"{case['name']}: exit {result.code}, {result.stderr!r}")
        if "Traceback" in result.stderr:
            problems.append(f"{case['name']}: traceback")
    assert problems == []
    assert len(INVALID) >= 15

    assert latest_revision(device, "vectors/invalid") == 1
    pulled = device.run("pull", "vectors/invalid", "--stdout", check=0)
    assert pulled.stdout_bytes == b"KEPT=1\n"


# -- bytes and encodings ----------------------------------------------------------


def test_a_utf8_bom_is_stored_but_is_not_part_of_the_first_key(device):
    data = b"\xef\xbb\xbfFIRST=1\r\nSECOND='two'\r\n"
    device.write(".env", data)
    device.run("init", "bom", check=0)

    assert device.run("pull", "bom", "--stdout", check=0).stdout_bytes == data
    assert device.run("get", "bom", "FIRST", check=0).stdout == "1\n"
    assert child_environment(device, "bom", ["FIRST", "\ufeffFIRST"]) == {
        "FIRST": "1",
        "\ufeffFIRST": None,
    }


def test_a_file_that_is_not_utf8_is_refused_and_no_app_is_made(device):
    device.write(".env", "A=1\nB=caf\xe9\n".encode("latin-1"))

    result = device.run("init", "latin1", check=1)
    assert error_lines(result) == [
        "dmage: .env: line 2: the file is not UTF-8 text; save it as UTF-8"
    ]
    device.run("pull", "latin1", "--stdout", check=1)


def test_a_utf16_file_is_stored_as_utf8_with_a_warning(device):
    device.write(".env", "\ufeffA=é\r\nB='x y'\r\n".encode("utf-16-le"))

    result = device.run("init", "utf16", check=0)
    assert "warning: .env is UTF-16; it is stored and pulled back as UTF-8" in (
        result.stderr
    )
    pulled = device.run("pull", "utf16", "--stdout", check=0)
    assert pulled.stdout_bytes == "A=é\r\nB='x y'\r\n".encode()
    assert device.run("get", "utf16", "A", check=0).stdout == "é\n"


def test_a_nul_in_a_value_is_refused_by_exec_and_shell_but_kept_in_json(device):
    device.write(".env", b'SAFE=1\nNUL="a\x00b"\n')
    device.run("init", "nul", check=0)

    result = device.run("exec", "nul", "--", "true", check=1)
    assert error_lines(result) == [
        "dmage: the value of NUL holds a NUL character, which no environment "
        "variable can carry"
    ]
    shell = device.run("pull", "nul", "--format", "shell", check=1)
    assert "NUL" in error_lines(shell)[0]
    exported = device.run("pull", "nul", "--format", "json", check=0)
    assert json.loads(exported.stdout) == {"SAFE": "1", "NUL": "a\x00b"}


# -- diff --------------------------------------------------------------------------

REMOTE = "# api\nKEEP=same\nB=secret-b-old\nC=secret-c\nPEM='l1\nl2'\n"


def _diff_app(device: Device, app: str) -> None:
    device.write(".env", REMOTE)
    device.run("init", app, check=0)


def test_diff_lists_added_removed_and_changed_keys_with_masked_values(device):
    _diff_app(device, "diff/keys")
    device.write(".env", "KEEP=same\nB=secret-b-new\nD='secret d'\nPEM='l1\nl2'\n")

    masked = device.run("diff", "diff/keys", check=0)
    assert masked.stdout.splitlines() == [
        ".env against revision 1 of diff/keys (dev):",
        "  + D=******",
        "  - C=******",
        "  ~ B: ****** -> ******",
    ]
    assert "secret" not in masked.stdout + masked.stderr

    shown = device.run("diff", "diff/keys", "--show-values", check=0)
    assert shown.stdout.splitlines()[1:] == [
        "  + D='secret d'",
        "  - C=secret-c",
        "  ~ B: secret-b-old -> secret-b-new",
    ]


def test_diff_json_names_keys_and_shows_values_only_when_asked(device):
    _diff_app(device, "diff/json")
    device.write(".env", REMOTE.replace("'l1\nl2'", '"l1\\nl3"') + "NEW=1\n")

    document = device.run("diff", "diff/json", "--json", check=0).json()
    assert document == {
        "app": "diff/json",
        "env": "dev",
        "revision": 1,
        "file": ".env",
        "identical": False,
        "only_formatting": False,
        "formatting": [],
        "added": ["NEW"],
        "removed": [],
        "changed": ["PEM"],
    }
    shown = device.run("diff", "diff/json", "--json", "--show-values", check=0)
    assert shown.json()["values"] == {
        "NEW": {"remote": None, "local": "1"},
        "PEM": {"remote": "l1\nl2", "local": "l1\nl3"},
    }
    printed = device.run("diff", "diff/json", "--show-values", check=0)
    assert "  ~ PEM: 'l1\\nl2' -> 'l1\\nl3'" not in printed.stdout
    assert '  ~ PEM: "l1\\nl2" -> "l1\\nl3"' in printed.stdout


@pytest.mark.parametrize(
    ("local", "what"),
    [
        (REMOTE.replace("\n", "\r\n"), "line endings"),
        (
            "# new comment\n\n" + REMOTE.replace("# api\n", ""),
            "comments or blank lines",
        ),
        (REMOTE.replace("KEEP=same", "export KEEP = 'same'"), "how values are written"),
        ("\ufeff" + REMOTE, "byte order mark"),
    ],
    ids=["line-endings", "comments", "quoting", "bom"],
)
def test_diff_reports_a_formatting_only_change_as_such(device, local, what):
    app = "diff/" + what.split()[0]
    _diff_app(device, app)
    device.write(".env", local)

    result = device.run("diff", app, check=0)
    assert result.stdout.startswith(
        f"Same values as revision 1 of {app} (dev); only the formatting differs: {what}"
    )
    document = device.run("diff", app, "--json", check=0).json()
    assert document["only_formatting"] is True
    assert document["added"] == document["removed"] == document["changed"] == []
    assert document["formatting"][0].startswith(what)


def test_diff_of_the_pushed_file_says_identical(device):
    _diff_app(device, "diff/same")
    result = device.run("diff", "diff/same", check=0)
    assert result.stdout == ".env is identical to revision 1 of diff/same (dev).\n"


def test_diff_of_an_invalid_local_file_names_the_line(device):
    _diff_app(device, "diff/bad")
    device.write("broken.env", "A=1\nB='open\n")
    result = device.run("diff", "diff/bad", "--file", "broken.env", check=1)
    assert error_lines(result) == [
        "dmage: broken.env: line 2: unterminated single-quoted value"
    ]


# -- set, unset, get ---------------------------------------------------------------

STORED = (
    "\ufeff# settings for the api\r\n"
    "export API_URL=https://api.example/v1  # prod\r\n"
    "QUOTED='keep me'\r\n"
    'PEM="-----BEGIN KEY-----\r\nabc\r\n-----END KEY-----"\r\n'
    "\r\n"
    "TOKEN = old # rotate monthly\r\n"
    "LAST=1"
)


def test_set_changes_one_line_and_keeps_every_other_byte(device):
    device.write(".env", STORED.encode())
    device.run("init", "edit/set", check=0)

    device.run(
        "set", "edit/set", "TOKEN=new value", "PEM=line1\nline2", "NEW=x", check=0
    )
    pulled = device.run("pull", "edit/set", "--stdout", check=0).stdout_bytes
    assert pulled.decode() == (
        "\ufeff# settings for the api\r\n"
        "export API_URL=https://api.example/v1  # prod\r\n"
        "QUOTED='keep me'\r\n"
        'PEM="line1\\nline2"\r\n'
        "\r\n"
        "TOKEN = 'new value' # rotate monthly\r\n"
        "LAST=1\r\n"
        "NEW=x\r\n"
    )
    assert latest_revision(device, "edit/set") == 2


def test_set_of_an_unchanged_value_makes_no_revision(device):
    device.write(".env", STORED.encode())
    device.run("init", "edit/same", check=0)

    result = device.run("set", "edit/same", "QUOTED=keep me", "--json", check=0)
    assert result.json() == {
        "app": "edit/same",
        "env": "dev",
        "revision": 1,
        "keys": [],
    }
    assert latest_revision(device, "edit/same") == 1


def test_unset_removes_whole_assignments_and_keeps_the_rest(device):
    device.write(".env", STORED.encode())
    device.run("init", "edit/unset", check=0)

    result = device.run("unset", "edit/unset", "PEM", "LAST", "MISSING", check=0)
    assert "warning: edit/unset has no key MISSING; nothing to unset" in result.stderr
    assert "Unset PEM, LAST in edit/unset (dev): pushed revision 2." in result.stderr
    pulled = device.run("pull", "edit/unset", "--stdout", check=0).stdout_bytes
    assert pulled.decode() == (
        "\ufeff# settings for the api\r\n"
        "export API_URL=https://api.example/v1  # prod\r\n"
        "QUOTED='keep me'\r\n"
        "\r\n"
        "TOKEN = old # rotate monthly\r\n"
    )

    again = device.run("unset", "edit/unset", "PEM", check=0)
    assert "Nothing to change: revision 2 stays the latest." in again.stderr


def test_tricky_values_set_through_argv_come_back_exactly(device):
    device.write(".env", "# values set from the command line\n")
    device.run("init", "edit/tricky", check=0)
    assignments = [f"{key}={value}" for key, value in TRICKY.items()]
    device.run("set", "edit/tricky", *assignments, check=0)

    for key, value in TRICKY.items():
        got = device.run("get", "edit/tricky", key, check=0)
        assert got.stdout_bytes == (value + "\n").encode(), key
    document = device.run("get", "edit/tricky", "NEWLINES", "--json", check=0).json()
    assert document == {
        "app": "edit/tricky",
        "env": "dev",
        "revision": 2,
        "key": "NEWLINES",
        "value": "line1\nline2\n",
    }
    assert child_environment(device, "edit/tricky", TRICKY) == TRICKY
    exported = device.run("pull", "edit/tricky", "--format", "json", check=0)
    assert list(json.loads(exported.stdout).items()) == list(TRICKY.items())


def test_set_refuses_invalid_keys_and_words_without_equals(device):
    device.write(".env", "A=1\n")
    device.run("init", "edit/refused", check=0)

    for word, message in [
        ("MY KEY=1", "dmage: invalid key 'MY KEY': use letters, digits, _, . and -"),
        ("=1", "dmage: invalid key '': use letters, digits, _, . and -"),
        ("export A=1", "dmage: invalid key 'export A'"),
    ]:
        result = device.run("set", "edit/refused", "B=2", word, check=1)
        assert error_lines(result)[0].startswith(message)
    # A word without '=' is a usage mistake, and is not echoed: it may be a
    # secret typed without its key.
    bare = device.run("set", "edit/refused", "B=2", "hunter2", check=2)
    assert "an argument has no '=': write KEY=VALUE" in bare.stderr
    assert "hunter2" not in bare.stderr
    unset = device.run("unset", "edit/refused", "A$B", check=1)
    assert error_lines(unset) == [
        "dmage: invalid key 'A$B': use letters, digits, _, . and -"
    ]
    assert latest_revision(device, "edit/refused") == 1


def test_get_of_a_missing_key_exits_1(device):
    device.write(".env", "A=1\n")
    device.run("init", "edit/get", check=0)

    result = device.run("get", "edit/get", "NOPE", check=1)
    assert error_lines(result) == [
        "dmage: edit/get (dev) has no key NOPE in revision 1"
    ]
    assert result.stdout == ""
    assert device.run("get", "edit/get", "NOPE", "--json", check=1).json() == {
        "error": {
            "message": "edit/get (dev) has no key NOPE in revision 1",
            "exit_code": 1,
        }
    }


def test_a_stale_local_file_cannot_undo_a_set(device):
    device.write(".env", "A=1\nB=2\n")
    device.run("init", "edit/stale", check=0)
    device.run("set", "edit/stale", "A=changed remotely", check=0)
    device.run("get", "edit/stale", "A", check=0)
    device.run("exec", "edit/stale", "--", "true", check=0)

    device.write(".env", "A=1\nB=edited locally\n")
    stale = device.run("push", "edit/stale", check=4)
    assert "pull first" in stale.stderr
    assert device.run("get", "edit/stale", "A", check=0).stdout == "changed remotely\n"


def test_set_on_an_env_without_revisions_starts_an_empty_file(device):
    device.write(".env", "A=1\n")
    device.run("init", "edit/fresh", check=0)
    device.run("env", "new", "edit/fresh", "staging", check=0)
    diff = device.run("diff", "edit/fresh", "--env", "staging", "--json", check=0)
    assert (diff.json()["revision"], diff.json()["added"]) == (0, ["A"])

    device.run("set", "edit/fresh", "--env", "staging", "B=2", "C=x y", check=0)
    pulled = device.run("pull", "edit/fresh", "--env", "staging", "--stdout", check=0)
    assert pulled.stdout == "B=2\nC='x y'\n"


def test_get_and_exec_read_with_a_ci_token_alone(device, tmp_path):
    device.write(".env", "A='x y'\ngo-version=1.22\n")
    device.run("init", "edit/ci", check=0)
    made = device.run("gen-ci-token", "--app", "edit/ci", "--env", "dev", "--json")
    pipeline = Device(tmp_path / "ci-home", tmp_path / "ci-work", device.server)
    token = {"DOTMAGE_CI_TOKEN": made.json()["token"], **UTF8_CHILD}

    got = pipeline.run("get", "edit/ci", "A", env=token, check=0)
    assert got.stdout == "x y\n"
    child = pipeline.run(
        "exec", "edit/ci", "--", sys.executable, "-c", PRINT_ENV, "A", "go-version",
        env=token, check=0,
    )  # fmt: skip
    assert json.loads(child.stdout) == {"A": "x y", "go-version": "1.22"}


# -- pull --format ------------------------------------------------------------------


def _sourced_values(device: Device, shell: str, how: str) -> dict:
    """Load exported.sh into shell, then report the values from a child."""
    load = {"source": ". ./exported.sh", "eval": 'eval "$(cat exported.sh)"'}[how]
    keys = " ".join(TRICKY)
    script = f'{load} && exec "{sys.executable}" -c "$PRINT_ENV" {keys}'
    environment = {"PATH": os.environ["PATH"], "PRINT_ENV": PRINT_ENV, **UTF8_CHILD}
    completed = subprocess.run(
        [shell, "-c", script], cwd=device.cwd, env=environment, capture_output=True
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_shell_format_is_safe_to_source_and_eval(device, shell):
    device.write(".env", "".join(f"{k}={dotenv.quote(v)}\n" for k, v in TRICKY.items()))
    device.run("init", f"format/{shell}", check=0)

    device.run(
        "pull",
        f"format/{shell}",
        "--format",
        "shell",
        "--output",
        "exported.sh",
        check=0,
    )
    assert (device.cwd / "exported.sh").read_text().startswith("export DQ='say \"hi\"'")
    assert _sourced_values(device, shell, "source") == TRICKY
    assert _sourced_values(device, shell, "eval") == TRICKY


def test_shell_format_refuses_keys_that_are_not_shell_names(device):
    device.write(".env", "go-version=1.22\na.b=c\nPLAIN=1\n")
    device.run("init", "format/names", check=0)

    result = device.run("pull", "format/names", "--format", "shell", check=1)
    assert error_lines(result) == [
        "dmage: cannot write shell format: 'go-version' is not a shell variable "
        "name (letters, digits, _)"
    ]
    assert result.stdout == ""
    seen = child_environment(device, "format/names", ["go-version", "a.b", "PLAIN"])
    assert seen == {"go-version": "1.22", "a.b": "c", "PLAIN": "1"}


def test_json_and_shell_formats_print_to_stdout_and_write_no_env_file(device):
    text = "# c\nexport A='x y'\nB=\"l1\\nl2\"\nA=last\n"
    device.write("source.env", text)
    device.run("init", "format/json", "--file", "source.env", check=0)

    exported = device.run("pull", "format/json", "--format", "json", check=0)
    assert exported.stdout == '{\n  "A": "last",\n  "B": "l1\\nl2"\n}\n'
    shell = device.run("pull", "format/json", "--format", "shell", check=0)
    assert shell.stdout == "export A='last'\nexport B='l1\nl2'\n"
    assert not (device.cwd / ".env").exists()
