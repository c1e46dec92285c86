"""Every table of Agora, imported in one place for migrations and test clean-up."""

from __future__ import annotations

from agora.core.db import Base

metadata = Base.metadata
