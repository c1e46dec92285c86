"""Where the page's files come from: its own modules in the package, and the chart library from
the installed ``plotly`` wheel, served by this process so the page fetches nothing from another
host and nothing is copied into the repository.

The chart library's URL carries its version, so browsers may keep it for a year; the page's own
modules are small and revalidated by ETag on each load.
"""

from __future__ import annotations

import functools
from importlib import metadata, resources
from pathlib import Path

STATIC_PACKAGE = ("agora.dashboard", "static")
CHART_LIBRARY_CACHE_CONTROL = "public, max-age=31536000, immutable"
PAGE_CACHE_CONTROL = "no-cache"


@functools.cache
def chart_library_version() -> str:
    """The installed plotly version, which names the chart library's URL."""
    return metadata.version("plotly")


@functools.cache
def chart_library_path() -> Path:
    """The ``plotly.min.js`` shipped inside the installed plotly package."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js is missing from the plotly package at {path}")
    return path
