"""Generate the gRPC stubs from ``proto/`` when Agora is built or installed (also editable).

The stubs are build output, never committed: ``grpc_tools.protoc`` writes the messages and
services next to the package (``src/agora/rpc/...``) and mypy-protobuf writes their typed
``.pyi`` stubs, so ``mypy --strict`` checks the code that calls them. ``python hatch_build.py``
runs the same generation by hand (the Makefile does after a ``.proto`` changes).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
PROTO_ROOT = ROOT / "proto"
OUTPUT = ROOT / "src"


def _plugin(name: str) -> str:
    """The path of a protoc plugin installed beside this interpreter (or on PATH)."""
    beside = Path(sysconfig.get_path("scripts")) / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (it comes with mypy-protobuf)")
    return found


def generate() -> list[Path]:
    """Compile every ``.proto`` under ``proto/``; the generated files."""
    protos = sorted(PROTO_ROOT.rglob("*.proto"))
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={OUTPUT}",
        f"--grpc_python_out={OUTPUT}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--mypy_out={OUTPUT}",
        f"--mypy_grpc_out={OUTPUT}",
        *(str(proto) for proto in protos),
    ]
    subprocess.run(command, check=True, cwd=ROOT)  # noqa: S603 - our own fixed command
    generated = []
    for proto in protos:
        stem = OUTPUT / proto.relative_to(PROTO_ROOT).with_suffix("")
        generated += [stem.parent / f"{stem.name}{suffix}" for suffix in _SUFFIXES]
    return generated


_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run by hand, outside a build
    pass
else:

    class ProtoBuildHook(BuildHookInterface):  # type: ignore[type-arg]
        """Generates the stubs before hatchling collects the package's files."""

        PLUGIN_NAME = "custom"

        def initialize(self, version: str, build_data: dict[str, Any]) -> None:
            """Generate, and ship the generated files though git ignores them."""
            for path in generate():
                build_data["force_include"][str(path)] = str(path.relative_to(OUTPUT))


if __name__ == "__main__":
    for path in generate():
        print(path.relative_to(ROOT))
