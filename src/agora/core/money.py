"""Money: an integer amount of minor units and an ISO 4217 currency code. Never a float."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

CurrencyCode = Annotated[
    str, StringConstraints(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", to_upper=True)
]
MAX_AMOUNT = 10**12


class Money(BaseModel):
    """An amount in minor units (cents, fen) of a currency: ``{amount: 1999, currency: "EUR"}``."""

    model_config = ConfigDict(frozen=True)

    amount: Annotated[int, Field(ge=0, le=MAX_AMOUNT, strict=True)]
    currency: CurrencyCode
