"""Request and response bodies of the payments API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from agora.core.money import Money

ProviderName = Literal["dev", "stripe", "alipay", "wechatpay"]
WebhookProvider = Literal["stripe", "alipay", "wechatpay"]


class PaymentCreate(BaseModel):
    """Pay an order through one of the enabled providers."""

    model_config = ConfigDict(extra="forbid")

    provider: ProviderName


class PaymentOut(BaseModel):
    """A payment and what the client needs to complete it (one of the three, by provider)."""

    id: uuid.UUID
    order_id: uuid.UUID
    provider: str
    status: str
    amount: Money
    client_secret: str | None = Field(None, description="Stripe: confirm with Stripe.js.")
    redirect_url: str | None = Field(None, description="Alipay: send the buyer there.")
    code_url: str | None = Field(None, description="WeChat Pay: show it as a QR code.")
    created_at: dt.datetime


class RefundCreate(BaseModel):
    """Refund part of the captured amount, or all that is left when ``amount`` is omitted."""

    model_config = ConfigDict(extra="forbid")

    amount: Money | None = None
    reason: Annotated[str, Field(max_length=500)] = ""


class RefundOut(BaseModel):
    """A refund: ``pending`` until the provider confirms it."""

    id: uuid.UUID
    payment_id: uuid.UUID
    status: str
    amount: Money
    reason: str
    created_at: dt.datetime
