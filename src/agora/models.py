"""Every table of Agora, imported in one place for migrations and test clean-up."""

from __future__ import annotations

from agora.accounts import models as accounts_models
from agora.catalog import models as catalog_models
from agora.core.db import Base
from agora.payments import models as payments_models

metadata = Base.metadata
__all__ = ["accounts_models", "catalog_models", "metadata", "payments_models"]
