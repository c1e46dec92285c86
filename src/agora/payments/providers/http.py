"""Outbound HTTP to payment providers: timeouts, and bounded retries with backoff.

Retrying is safe because every call that changes something carries our idempotency reference
(Stripe's ``Idempotency-Key``, Alipay's ``out_trade_no``/``out_request_no``, WeChat Pay's
``out_trade_no``/``out_refund_no``): a repeated request is recognised, not executed twice.
Connection errors, timeouts, 429 and 5xx answers are retried; other answers are returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
import structlog

from agora.core.tls import verified_tls
from agora.payments.providers.base import ProviderError

log = structlog.get_logger(__name__)
_RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ProviderHttp:
    """A provider's API base URL with the timeout and retry budget of each call."""

    base_url: str
    timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.25

    async def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request, retrying transport failures and 429/5xx up to ``retries`` times."""
        url = self.base_url.rstrip("/") + path
        attempt = 0
        async with httpx.AsyncClient(timeout=self.timeout, verify=verified_tls()) as client:
            while True:
                try:
                    response = await client.request(
                        method, url, headers=headers, content=content, data=data
                    )
                except httpx.TransportError as error:
                    if attempt >= self.retries:
                        raise ProviderError(
                            f"{method} {url} failed: {error!r}", is_retryable=True
                        ) from error
                else:
                    if response.status_code not in _RETRYABLE_STATUSES or attempt >= self.retries:
                        return response
                log.warning("provider_call_retry", method=method, url=url, attempt=attempt)
                attempt += 1
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))


def raise_for_answer(response: httpx.Response, what: str) -> None:
    """Turn a provider's error answer into a ``ProviderError`` (retryable if 429 or 5xx)."""
    if response.is_success:
        return
    raise ProviderError(
        f"{what}: provider answered {response.status_code}: {response.text[:300]}",
        is_retryable=response.status_code in _RETRYABLE_STATUSES,
    )
