"""The command line documents itself: every option has a help line, and the synopsis in the
README and in docs/index.md is the same text and names every command and option."""

import argparse
import inspect
import re
from pathlib import Path

import pytest

from adljax.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/index.md")


def synopsis(page: str) -> str:
    """The fenced block of ``page`` that starts with ``adljax train MODEL``."""
    found = re.search(r"```\n(adljax train MODEL.*?)```", (ROOT / page).read_text(), re.S)
    assert found, f"{page} has no command-line synopsis"
    return found.group(1)


def sections(text: str) -> dict[str, str]:
    """``{command: its lines}``: each command's text runs until the next ``adljax`` line."""
    parts = re.split(r"^adljax (\w+)", text, flags=re.M)[1:]
    return dict(zip(parts[::2], parts[1::2], strict=True))


def subcommands() -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_readme_and_docs_show_the_same_synopsis():
    assert synopsis("README.md") == synopsis("docs/index.md")


@pytest.mark.parametrize("page", PAGES)
def test_synopsis_lists_every_command_and_option(page):
    shown = sections(synopsis(page))
    commands = subcommands()
    assert set(shown) == set(commands)
    for name, parser in commands.items():
        for action in parser._actions:
            long = [o for o in action.option_strings if o.startswith("--") and o != "--help"]
            for option in long:
                assert re.search(rf"{re.escape(option)}\b", shown[name]), (
                    f"{page}: `adljax {name}` synopsis lacks {option}"
                )


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_option_has_a_help_line_with_its_default(command):
    for action in subcommands()[command]._actions:
        if not action.option_strings or action.option_strings[0] == "-h":
            continue
        assert action.help, f"adljax {command} {action.option_strings[0]} has no help text"
        # A default worth stating (not unset, not a flag's False) is stated in the help.
        shown = action.default not in (None, False, [], argparse.SUPPRESS)
        if shown and not isinstance(action, argparse.BooleanOptionalAction):
            default = action.default
            text = str(default.name if isinstance(default, Path) else default)
            assert text in action.help, (
                f"adljax {command} {action.option_strings[0]}: help does not state the "
                f"default {default!r}"
            )


def test_seq_len_help_names_every_dataset_that_takes_it():
    from adljax.data.embedded import EMBEDDED

    takes = {n for n, e in EMBEDDED.items() if "seq_len" in inspect.signature(e.build).parameters}
    (action,) = [a for a in subcommands()["train"]._actions if "--seq-len" in a.option_strings]
    named = set(re.findall(r"\w+", action.help)) & set(EMBEDDED)
    assert named == takes


def _help_of(command: str, option: str) -> str:
    (action,) = [a for a in subcommands()[command]._actions if option in a.option_strings]
    return action.help


def test_choice_options_list_exactly_the_librarys_choices():
    from adljax.training.optimizers import OPTIMIZER_NAMES, SCHEDULE_NAMES
    from adljax.training.precision import DTYPE_NAMES

    for option, names in (
        ("--optimizer", OPTIMIZER_NAMES),
        ("--schedule", SCHEDULE_NAMES),
        ("--dtype", DTYPE_NAMES),
    ):
        text = _help_of("train", option)
        listed = {word for word in re.findall(r"\w+", text) if word in set(names)}
        assert listed == set(names), f"{option} help lists {sorted(listed)}, not {names}"
