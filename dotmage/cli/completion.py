"""Shell completion scripts for bash, zsh and PowerShell, made from the parser."""

import argparse
from dataclasses import dataclass, field

SHELLS = ("bash", "zsh", "powershell")
FILE = "FILE"  # an option whose value is a path: the shell completes file names


@dataclass
class Level:
    """One command or action: the words that may follow it and its options."""

    words: list = field(default_factory=list)
    options: list = field(default_factory=list)


@dataclass
class Tree:
    """Every level by its path ("" for dmage itself, "env new" below it), and
    what each value-taking option accepts (choices, FILE, or [] for free text)."""

    levels: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)


def command_tree(parser: argparse.ArgumentParser) -> Tree:
    tree = Tree()
    _walk(parser, "", tree)
    return tree


def _walk(parser, path: str, tree: Tree) -> None:
    level = Level()
    tree.levels[path] = level
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                level.words.append(name)
                _walk(sub, f"{path} {name}".strip(), tree)
        elif action.option_strings:
            level.options += action.option_strings
            if action.nargs != 0:
                for option in action.option_strings:
                    tree.values[option] = _value_kind(action)
        elif action.choices:
            level.words += list(action.choices)


def _value_kind(action) -> list | str:
    if action.choices:
        return list(action.choices)
    if action.dest in ("file", "output") or action.metavar == "PATH":
        return FILE
    return []


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    tree = command_tree(parser)
    if shell == "powershell":
        return _powershell(tree)
    main = BASH_MAIN if shell == "bash" else ZSH_MAIN
    return HEADER.format(shell=shell) + _shared_functions(tree) + main


# -- bash and zsh share the functions that know the commands ---------------------

HEADER = """\
# {shell} completion for dmage, generated from its argument parser by
# `dmage completion {shell}`. Load it with: eval "$(dmage completion {shell})"
"""


def _shared_functions(tree: Tree) -> str:
    words = [(p, lv.words) for p, lv in tree.levels.items() if lv.words]
    options = [(p, lv.options) for p, lv in tree.levels.items()]
    return (
        "\n# The subcommands or actions that may follow a level.\n"
        + _case_function("_dmage_words", words)
        + "\n# The options a level takes.\n"
        + _case_function("_dmage_options", options)
        + "\n# What an option's value may be (FILE: a path; nothing: free text);\n"
        + "# fails for an option that takes no value.\n"
        + _value_function(tree.values)
        + SHARED_LEVEL
    )


def _case_function(name: str, rows) -> str:
    lines = [f"{name}() {{", '    case "$1" in']
    for path, words in rows:
        lines.append(f'        "{path}") echo "{" ".join(words)}" ;;')
    lines += ["    esac", "}", ""]
    return "\n".join(lines)


def _value_function(values: dict) -> str:
    grouped = {}
    for option, kind in sorted(values.items()):
        answer = kind if kind == FILE else " ".join(kind)
        grouped.setdefault(answer, []).append(option)
    lines = ["_dmage_value() {", '    case "$1" in']
    for answer, options in sorted(grouped.items()):
        echo = f' echo "{answer}" ;;' if answer else " ;;"
        lines.append(f"        {'|'.join(options)}){echo}")
    lines += ["        *) return 1 ;;", "    esac", "}", ""]
    return "\n".join(lines)


SHARED_LEVEL = """
# The command path the given words lead to ("env new"), or "--" once a
# command to run (dmage exec NAME -- CMD) has begun.
_dmage_level() {
    local level="" skip=0 word candidate
    for word in "$@"; do
        if [ "$skip" = 1 ]; then
            skip=0
            continue
        fi
        case "$word" in
            --) echo "--"; return ;;
            -*) _dmage_value "$word" >/dev/null && skip=1; continue ;;
        esac
        for candidate in $(_dmage_words "$level"); do
            if [ "$candidate" = "$word" ]; then
                level="${level:+$level }$word"
                break
            fi
        done
    done
    echo "$level"
}
"""

BASH_MAIN = """
_dmage() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local level values
    COMPREPLY=()
    level=$(_dmage_level "${COMP_WORDS[@]:1:COMP_CWORD-1}")
    # After --, the shell's own completion (complete -o default) takes over.
    [ "$level" = "--" ] && return 0
    # shellcheck disable=SC2207
    if values=$(_dmage_value "$prev"); then
        if [ "$values" = FILE ]; then
            COMPREPLY=($(compgen -f -- "$cur"))
        elif [ -n "$values" ]; then
            COMPREPLY=($(compgen -W "$values" -- "$cur"))
        fi
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_dmage_options "$level")" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$(_dmage_words "$level")" -- "$cur"))
    fi
    return 0
}

complete -o default -F _dmage dmage dmage.pyz
"""

ZSH_MAIN = """
_dmage() {
    local cur=${words[CURRENT]} prev=${words[CURRENT-1]} level values
    level=$(_dmage_level "${(@)words[2,CURRENT-1]}")
    if [[ $level == -- ]]; then
        # Complete the command after -- as if it stood alone.
        local at=${words[(i)--]}
        shift $at words
        (( CURRENT -= at ))
        _normal
        return
    fi
    if values=$(_dmage_value "$prev"); then
        if [[ $values == FILE ]]; then
            _files
        elif [[ -n $values ]]; then
            compadd -- ${=values}
        fi
    elif [[ $cur == -* ]]; then
        compadd -- ${=$(_dmage_options "$level")}
    else
        compadd -- ${=$(_dmage_words "$level")}
    fi
}

compdef _dmage dmage dmage.pyz
"""


# -- PowerShell ----------------------------------------------------------------


def _powershell(tree: Tree) -> str:
    words = [(p, lv.words) for p, lv in tree.levels.items() if lv.words]
    options = [(p, lv.options) for p, lv in tree.levels.items()]
    values = [(o, [k] if k == FILE else k) for o, k in sorted(tree.values.items())]
    return (
        POWERSHELL.replace("@@WORDS@@", _ps_table(words))
        .replace("@@OPTIONS@@", _ps_table(options))
        .replace("@@VALUES@@", _ps_table(values))
    )


def _ps_table(rows) -> str:
    lines = []
    for key, items in rows:
        quoted = ", ".join(f"'{item}'" for item in items)
        lines.append(f"        '{key}' = @({quoted})")
    return "\n".join(lines)


POWERSHELL = """\
# PowerShell completion for dmage, generated from its argument parser by
# `dmage completion powershell`. Load it with:
#     dmage completion powershell | Out-String | Invoke-Expression
# or add that line to $PROFILE.

Register-ArgumentCompleter -Native -CommandName 'dmage', 'dmage.cmd' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $words = @{
@@WORDS@@
    }
    $options = @{
@@OPTIONS@@
    }
    # What an option's value may be: choices, 'FILE' for a path, @() for free text.
    $values = @{
@@VALUES@@
    }

    # The words before the one being completed, without dmage itself.
    $done = @($commandAst.CommandElements |
        Select-Object -Skip 1 |
        Where-Object { $_.Extent.EndOffset -lt $cursorPosition } |
        ForEach-Object { $_.ToString() })

    $level = ''
    $skip = $false
    $previous = ''
    foreach ($word in $done) {
        $previous = $word
        if ($skip) { $skip = $false; continue }
        if ($word -eq '--') { return }
        if ($word.StartsWith('-')) { $skip = $values.ContainsKey($word); continue }
        if ($words.ContainsKey($level) -and $words[$level] -contains $word) {
            $level = ("$level $word").Trim()
        }
    }

    if ($skip) {
        $candidates = @($values[$previous] | Where-Object { $_ -ne 'FILE' })
    } elseif ($wordToComplete.StartsWith('-')) {
        $candidates = $options[$level]
    } else {
        $candidates = $words[$level]
    }
    $candidates |
        Where-Object { $_ -like "$wordToComplete*" } |
        ForEach-Object {
            [System.Management.Automation.CompletionResult]::new(
                $_, $_, 'ParameterValue', $_)
        }
}
"""
