"""Every table of Agora, imported in one place for migrations and test clean-up."""

from __future__ import annotations

from agora.accounts import models as accounts_models
from agora.cart import models as cart_models
from agora.catalog import models as catalog_models
from agora.core import idempotency as idempotency_models
from agora.core import jobs as jobs_models
from agora.core import outbox as outbox_models
from agora.core.db import Base
from agora.flashsale import models as flashsale_models
from agora.inventory import models as inventory_models
from agora.logs import models as logs_models
from agora.orders import models as orders_models
from agora.payments import models as payments_models
from agora.pricewatch import models as pricewatch_models
from agora.webhooks import models as webhooks_models

metadata = Base.metadata
__all__ = [
    "accounts_models",
    "cart_models",
    "catalog_models",
    "flashsale_models",
    "idempotency_models",
    "inventory_models",
    "jobs_models",
    "logs_models",
    "metadata",
    "orders_models",
    "outbox_models",
    "payments_models",
    "pricewatch_models",
    "webhooks_models",
]
