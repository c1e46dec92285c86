"""Readers for the deployment files, and the facts of the code they must agree with.

The facts come from the code itself (the Typer app, ``Settings``, the metrics of
``agora.core.observability``), so a renamed command, setting or metric breaks these checks.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import crossplane
import pytest
import typer.main
import yaml
from dockerfile_parse import DockerfileParser
from prometheus_client.metrics import MetricWrapperBase

import agora.core.observability as observability
from agora.cli import app as cli_app
from agora.settings import Settings
from tests.support import ROOT

DEPLOY = ROOT / "deploy"
AGORA_VARIABLE = re.compile(r"\bAGORA_[A-Z0-9_]+\b")
_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
_METRIC_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=[{\[])")
_AGORA_METRIC = re.compile(r"\bagora_[a-z0-9_]+")


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


def load_yaml_documents(path: Path) -> list[Any]:
    """Every non-empty YAML document of ``path``."""
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """The (INSTRUCTION, arguments) pairs of a Dockerfile, as dockerfile-parse reads them."""
    parser = DockerfileParser(fileobj=io.BytesIO(path.read_bytes()))
    return [
        (item["instruction"], item["value"])
        for item in parser.structure
        if item["instruction"] != "COMMENT"
    ]


@dataclass
class NginxBlock:
    """One nginx directive, as crossplane (nginx's own config parser) reads it."""

    name: str
    arguments: list[str]
    children: list[NginxBlock] = field(default_factory=list)

    def find(self, name: str) -> list[NginxBlock]:
        """The direct children called ``name``."""
        return [child for child in self.children if child.name == name]

    def values(self, name: str) -> list[list[str]]:
        """The arguments of each direct child directive called ``name``."""
        return [child.arguments for child in self.find(name)]


def read_nginx(path: Path) -> NginxBlock:
    """``path`` parsed by crossplane, without following includes; a syntax error raises."""
    parsed = crossplane.parse(str(path), single=True, check_ctx=False, check_args=False)
    errors = parsed["errors"] or [
        error for config in parsed["config"] for error in config["errors"]
    ]
    if errors:
        raise ValueError(errors[0]["error"])
    return NginxBlock("main", [], _nginx_children(parsed["config"][0]["parsed"]))


def _nginx_children(directives: list[dict[str, Any]]) -> list[NginxBlock]:
    return [
        NginxBlock(item["directive"], item["args"], _nginx_children(item.get("block", [])))
        for item in directives
    ]


def run_tool(*command: str) -> subprocess.CompletedProcess[str]:
    """Run a validator; skip the test, naming the tool, where it is not installed."""
    beside_python = Path(sys.executable).parent / command[0]
    tool = str(beside_python) if beside_python.exists() else shutil.which(command[0])
    if tool is None:
        pytest.skip(f"{command[0]} is not installed (.ci/run installs it: deploy/install-tools.sh)")
    return subprocess.run(
        [tool, *command[1:]], capture_output=True, text=True, check=False, timeout=120
    )
