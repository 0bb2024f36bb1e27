"""Commands about dmage itself: version and build, completion, help and man page.

Only the standard library is imported here: parser.py uses VersionAction,
and argparse-manpage loads the parser at build time.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dotmage import __version__
from dotmage.errors import DmageError

SOURCE_CHECKOUT = "source checkout"


def build_info() -> dict:
    """The version, and the build id and target when running from dmage.pyz.

    The .pyz bootstrap extracts app/ (holding BUILD_ID beside the package)
    and puts lib/<target>/ on sys.path; a checkout has neither.
    """
    app = Path(__file__).resolve().parent.parent.parent
    marker = app / "BUILD_ID"
    if not marker.is_file():
        return {"version": __version__, "build_id": None, "target": SOURCE_CHECKOUT}
    lib = os.path.realpath(app.parent / "lib")
    targets = [
        os.path.basename(entry)
        for entry in sys.path
        if entry and os.path.dirname(os.path.realpath(entry)) == lib
    ]
    return {
        "version": __version__,
        "build_id": marker.read_text().strip(),
        "target": targets[0] if targets else "unknown",
        "pyz": os.environ.get("DOTMAGE_PYZ"),
    }


def version_line(info: dict) -> str:
    if info["build_id"] is None:
        return f"dmage {info['version']} ({SOURCE_CHECKOUT})"
    return f"dmage {info['version']} (build {info['build_id']}, {info['target']})"


class VersionAction(argparse.Action):
    """`dmage --version`: the same line as `dmage version`, then exit."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs):
        kwargs.setdefault("help", "print the version, build id and target")
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs
        )

    def __call__(self, parser, namespace, values, option_string=None):
        # argparse stops at --version, so a --json after it is not parsed yet.
        wants_json = getattr(namespace, "json", False) or "--json" in sys.argv[1:]
        info = build_info()
        print(json.dumps(info) if wants_json else version_line(info), flush=True)
        parser.exit()


def version(args, context) -> int:
    info = build_info()
    context.out.document(info)
    context.out.data(version_line(info))
    return 0


def completion(args, context) -> int:
    from dotmage.cli.completion import script
    from dotmage.cli.parser import build_parser

    text = script(args.shell, build_parser())
    context.out.document({"shell": args.shell, "script": text})
    context.out.data(text.rstrip("\n"))
    return 0


def help_(args, context) -> int:
    if args.man:
        return _show_man_page(context)
    from dotmage.cli.parser import build_parser

    parser = _subparser(build_parser(), args.topic)
    text = parser.format_help()
    context.out.document({"command": " ".join(["dmage", *args.topic]), "help": text})
    context.out.data(text.rstrip("\n"))
    return 0


def _subparser(parser, topic: list) -> argparse.ArgumentParser:
    """The parser for `dmage help env new`: follow the words down."""
    for depth, word in enumerate(topic):
        choices = {}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                choices = action.choices
        if word not in choices:
            asked = " ".join(topic[: depth + 1])
            raise DmageError(f"no command 'dmage {asked}'; dmage help lists them")
        parser = choices[word]
    return parser


# -- the man page ----------------------------------------------------------------


def _show_man_page(context) -> int:
    page = man_page()
    if context.out.json_mode:
        context.out.document({"man_page": page.decode()})
        return 0
    # A person at a terminal gets man's pager; a pipe gets the troff source.
    viewer = shutil.which("man")
    if sys.stdout.isatty() and viewer:
        with tempfile.TemporaryDirectory(prefix="dmage-man-") as folder:
            path = Path(folder) / "dmage.1"
            path.write_bytes(page)
            return subprocess.call([viewer, str(path)])
    context.out.raw(page)
    return 0


def man_page() -> bytes:
    """dmage.1 as built into dmage.pyz, or made now from a checkout."""
    built = Path(__file__).resolve().parent.parent.parent / "dmage.1"
    if built.is_file():
        return built.read_bytes()
    try:
        from argparse_manpage.manpage import Manpage
    except ImportError:
        raise DmageError(
            "the man page is built into dmage.pyz; from a source checkout, "
            "pip install argparse-manpage or run python3 build_zipapp.py"
        ) from None
    from dotmage.cli.parser import build_parser

    data = {
        "prog": "dmage",
        "project_name": "dotMage",
        "version": __version__,
        "manual_title": "dotMage manual",
        "description": "end-to-end-encrypted .env files",
    }
    return str(Manpage(build_parser(), _data=data)).encode()


HANDLERS = {"version": version, "completion": completion, "help": help_}
