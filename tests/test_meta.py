"""dmage version, help and completion, through the real CLI from the checkout."""

import json
import re
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, base_environment

from dotmage import __version__

COMMANDS = ("auth", "pull", "exec", "env", "gen-ci-token", "completion", "help")


def dmage(*args, check=0):
    done = subprocess.run(
        [sys.executable, "-m", "dotmage", *args],
        env=base_environment(),
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == check, done.stderr
    return done


@pytest.fixture(scope="module")
def scripts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("completion")
    paths = {}
    for shell, name in (
        ("bash", "dmage.bash"),
        ("zsh", "_dmage"),
        ("powershell", "dmage.ps1"),
    ):
        paths[shell] = folder / name
        paths[shell].write_text(dmage("completion", shell).stdout)
    return paths


# -- version and help ------------------------------------------------------------


def test_version_from_a_checkout_says_so():
    assert dmage("--version").stdout == f"dmage {__version__} (source checkout)\n"
    assert dmage("version").stdout == f"dmage {__version__} (source checkout)\n"


def test_version_json_names_the_build_fields():
    document = json.loads(dmage("version", "--json").stdout)
    assert document == {
        "version": __version__,
        "build_id": None,
        "target": "source checkout",
    }


def test_version_flag_with_json_prints_one_document_in_either_order():
    expected = {"version": __version__, "build_id": None, "target": "source checkout"}
    assert json.loads(dmage("--json", "--version").stdout) == expected
    assert json.loads(dmage("--version", "--json").stdout) == expected


def test_help_follows_commands_and_actions():
    assert dmage("help").stdout.startswith("usage: dmage ")
    assert dmage("help", "env", "new").stdout.startswith("usage: dmage env new ")
    wrong = dmage("help", "env", "nope", check=1)
    last = wrong.stderr.splitlines()[-1]
    assert last == "dmage: no command 'dmage env nope'; dmage help lists them"


def test_help_man_from_a_checkout_prints_troff_into_a_pipe():
    page = dmage("help", "--man").stdout
    assert page.startswith(".TH DMAGE")
    assert r"gen\-ci\-token" in page


@pytest.mark.parametrize(
    "args, key",
    [
        (("completion", "zsh"), "script"),
        (("help", "env"), "help"),
        (("help", "--man"), "man_page"),
    ],
)
def test_json_mode_prints_one_document(args, key):
    document = json.loads(dmage(*args, "--json").stdout)
    assert document[key]


# -- bash --------------------------------------------------------------------------


def bash_complete(script, line):
    """Words bash's completion offers for the line, the cursor at its end."""
    program = f"""
source {script}
COMP_LINE='{line}'
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
_dmage
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completes_commands_actions_options_and_choices(scripts):
    script = scripts["bash"]
    assert set(COMMANDS) <= set(bash_complete(script, "dmage "))
    assert sorted(bash_complete(script, "dmage ge")) == [
        "gen-ci-token",
        "gen-token",
        "get",
    ]
    assert bash_complete(script, "dmage env ") == ["use", "list", "new", "rm"]
    assert "--copy-from" in bash_complete(script, "dmage env new --")
    assert bash_complete(script, "dmage pull myapp --format ") == [
        "dotenv",
        "json",
        "shell",
    ]
    assert bash_complete(script, "dmage completion ") == ["bash", "zsh", "powershell"]


def test_bash_skips_option_values_and_stops_at_the_double_dash(scripts):
    script = scripts["bash"]
    # "prod" is --env's value, not a command; "env" after it still is one.
    assert bash_complete(script, "dmage --env prod env ") == [
        "use",
        "list",
        "new",
        "rm",
    ]
    assert bash_complete(script, "dmage exec myapp -- pu") == []


def test_bash_script_passes_shellcheck(scripts):
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    done = subprocess.run(
        ["shellcheck", "--shell=bash", str(scripts["bash"])],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout


# -- zsh --------------------------------------------------------------------------


def zsh_complete(script, *words):
    """What _dmage hands to compadd, with zsh's completion builtins stubbed."""
    quoted = " ".join(f"'{word}'" for word in words)
    program = f"""
compdef() {{ : }}
compadd() {{ [[ $1 == -- ]] && shift; print -l -- "$@" }}
_files() {{ print FILES }}
source {script}
words=(dmage {quoted})
CURRENT=${{#words}}
_dmage
"""
    done = subprocess.run(["zsh", "-f", "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.skipif(not shutil.which("zsh"), reason="zsh is not installed")
def test_zsh_completes_like_bash(scripts):
    script = scripts["zsh"]
    assert set(COMMANDS) <= set(zsh_complete(script, ""))
    assert zsh_complete(script, "env", "") == ["use", "list", "new", "rm"]
    assert zsh_complete(script, "pull", "--format", "") == ["dotenv", "json", "shell"]
    assert zsh_complete(script, "init", "--file", "") == ["FILES"]
    assert "--show-values" in zsh_complete(script, "diff", "myapp", "--")


# -- PowerShell: no pwsh here, so the script is checked for its parts ---------------


def test_powershell_script_registers_a_completer_with_every_command(scripts):
    text = scripts["powershell"].read_text()
    assert (
        "Register-ArgumentCompleter -Native -CommandName 'dmage', 'dmage.cmd'" in text
    )
    top = re.search(r"^\s*'' = @\((.*)\)$", text, re.MULTILINE)
    assert top, text
    for command in COMMANDS:
        assert f"'{command}'" in top.group(1)
    assert "'env' = @('use', 'list', 'new', 'rm')" in text
    assert "'--format' = @('dotenv', 'json', 'shell')" in text
    for opening, closing in ("{}", "()"):
        assert text.count(opening) == text.count(closing), opening
