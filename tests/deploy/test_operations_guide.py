"""docs/operations.md stays true to the code: its configuration table and its commands."""

from __future__ import annotations

import re

from tests.deploy.support import AGORA_VARIABLE, check_cli_arguments, settings_variables
from tests.support import ROOT

GUIDE = ROOT / "docs" / "operations.md"


def configuration_table() -> set[str]:
    """The variables listed in the first column of the guide's configuration table."""
    section = GUIDE.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(AGORA_[A-Z0-9_]+)` \|", section, flags=re.MULTILINE))


def test_configuration_table_lists_every_setting_and_nothing_else() -> None:
    assert configuration_table() == settings_variables()


def test_every_variable_mentioned_is_a_setting() -> None:
    mentioned = set(AGORA_VARIABLE.findall(GUIDE.read_text()))
    assert mentioned <= settings_variables(), mentioned - settings_variables()


def test_every_agora_command_mentioned_exists() -> None:
    commands = set(re.findall(r"`agora ((?:services |stack |logs )?[a-z-]+)", GUIDE.read_text()))
    assert {"api", "worker", "beat", "migrate", "up", "services status"} <= commands
    for command in commands:
        check_cli_arguments(command.split())
