"""Readers for the deployment files, and the facts of the code they must agree with.

The facts come from the code itself (the Typer app, ``Settings``, the metrics of
``agora.core.observability``), so a renamed command, setting or metric breaks these checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer.main
import yaml
from prometheus_client.metrics import MetricWrapperBase

import agora.core.observability as observability
from agora.cli import app as cli_app
from agora.settings import Settings
from tests.support import ROOT

DEPLOY = ROOT / "deploy"
AGORA_VARIABLE = re.compile(r"\bAGORA_[A-Z0-9_]+\b")
_COMPOSE_VARIABLE = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?])(?P<argument>[^}]*))?\}"
)
_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
_METRIC_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=[{\[])")
_AGORA_METRIC = re.compile(r"\bagora_[a-z0-9_]+")
_NGINX_TOKEN = re.compile(
    r"#[^\n]*"  # a comment
    r"|'((?:[^'\\]|\\.)*)'"  # a single-quoted string
    r'|"((?:[^"\\]|\\.)*)"'  # a double-quoted string
    r"|([;{}])"  # the end of a directive, or a block
    r"|([^\s;{}'\"#]+)"  # a bare word
)


def settings_variables() -> set[str]:
    """The environment variable of every ``Settings`` field."""
    return {f"AGORA_{name.upper()}" for name in Settings.model_fields}


def settings_from_environment(environment: Mapping[str, object]) -> Settings:
    """``Settings`` built from ``AGORA_*`` variables only (no .env file): validates them."""
    values = {
        key.removeprefix("AGORA_").lower(): str(value)
        for key, value in environment.items()
        if key.startswith("AGORA_")
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def check_cli_arguments(arguments: list[str]) -> None:
    """Fail unless ``arguments`` parse as a real ``agora`` subcommand with real options."""
    command: Any = typer.main.get_command(cli_app)
    path: list[str] = []
    remaining = list(arguments)
    while hasattr(command, "commands"):  # a group: the next argument names its subcommand
        assert remaining, f"`agora {' '.join(path)}` needs a subcommand"
        name = remaining.pop(0)
        path.append(name)
        known = sorted(command.commands)
        command = command.commands.get(name)
        assert command is not None, f"`agora {' '.join(path)}` is not a command: {known}"
    try:
        command.make_context(f"agora {' '.join(path)}", remaining)
    except Exception as error:  # the command line's usage errors
        if not hasattr(error, "format_message"):
            raise
        raise AssertionError(f"agora {' '.join(arguments)}: {error.format_message()}") from error


def exported_metric_names() -> set[str]:
    """Every sample name the API exports, from the metrics defined in agora.core.observability."""
    names: set[str] = set()
    for value in vars(observability).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.update(family.name + suffix for suffix in _SAMPLE_SUFFIXES[family.type])
    return names


def metric_names_in(expression: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    return set(_METRIC_SELECTOR.findall(expression)) | set(_AGORA_METRIC.findall(expression))


def interpolate(text: str, environment: Mapping[str, str]) -> str:
    """Compose's variable interpolation: ``${X}``, ``${X:-default}``, ``${X:?error}``, ``$$``."""

    def replace(match: re.Match[str]) -> str:
        name, operator, argument = match["name"], match["operator"], match["argument"]
        if environment.get(name):
            return environment[name]
        if operator in (":?", "?"):
            raise KeyError(f"{name} is required: {argument}")
        return argument if operator in (":-", "-") else ""

    return _COMPOSE_VARIABLE.sub(replace, text).replace("$$", "$")


def interpolate_values(tree: Any, environment: Mapping[str, str]) -> Any:
    """Interpolate every string of a parsed compose file, as Compose does after parsing."""
    if isinstance(tree, str):
        return interpolate(tree, environment)
    if isinstance(tree, dict):
        return {key: interpolate_values(value, environment) for key, value in tree.items()}
    if isinstance(tree, list):
        return [interpolate_values(value, environment) for value in tree]
    return tree


def load_yaml_documents(path: Path) -> list[Any]:
    """Every non-empty YAML document of ``path``."""
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """The (INSTRUCTION, arguments) pairs of a Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


@dataclass
class NginxBlock:
    """One nginx directive with its arguments and, for a block, its children."""

    name: str
    arguments: list[str]
    children: list[NginxBlock] = field(default_factory=list)

    def find(self, name: str) -> list[NginxBlock]:
        """The direct children called ``name``."""
        return [child for child in self.children if child.name == name]

    def values(self, name: str) -> list[list[str]]:
        """The arguments of each direct child directive called ``name``."""
        return [child.arguments for child in self.find(name)]


def parse_nginx(text: str) -> NginxBlock:
    """Parse nginx configuration syntax; unbalanced braces or a missing ``;`` raise ValueError."""
    root = NginxBlock("main", [])
    stack, words = [root], []
    for token in _nginx_tokens(text):
        if token == ";":
            if not words:
                raise ValueError("empty directive")
            stack[-1].children.append(NginxBlock(words[0], words[1:]))
            words = []
        elif token == "{":
            if not words:
                raise ValueError("block without a name")
            block = NginxBlock(words[0], words[1:])
            stack[-1].children.append(block)
            stack.append(block)
            words = []
        elif token == "}":
            if words or len(stack) == 1:
                raise ValueError(f"unexpected '}}' after {words}")
            stack.pop()
        else:
            words.append(token)
    if words or len(stack) != 1:
        raise ValueError("unterminated directive or block at the end of the file")
    return root


def _nginx_tokens(text: str) -> list[str]:
    tokens = []
    for match in _NGINX_TOKEN.finditer(text):
        if match.group(0).startswith("#"):
            continue
        single, double, punctuation, word = match.groups()
        value = next(part for part in (single, double, punctuation, word) if part is not None)
        tokens.append(value)
    return tokens
