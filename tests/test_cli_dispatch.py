"""The CLI's dispatch table matches the parser, and exec stays lean."""

import argparse
import importlib

from dotmage.cli.main import COMMAND_MODULES, handler_for
from dotmage.cli.parser import build_parser


def _parser_commands() -> set[str]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("the parser has no subcommands")


def test_every_parser_command_has_a_handler_module():
    assert set(COMMAND_MODULES) == _parser_commands()


def test_each_module_handles_exactly_the_commands_routed_to_it():
    for module_name in set(COMMAND_MODULES.values()):
        module = importlib.import_module(f"dotmage.cli.{module_name}")
        routed = {c for c, m in COMMAND_MODULES.items() if m == module_name}
        assert set(module.HANDLERS) == routed, module_name


def test_handler_for_returns_the_registered_function():
    module = importlib.import_module("dotmage.cli.cmd_secrets")
    assert handler_for("exec") is module.HANDLERS["exec"]
