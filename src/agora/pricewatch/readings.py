"""Recording what fetched pages say: the crawler's side of price watch.

Only crawler processes read pages, so only they load the extraction libraries (extruct, lxml,
parsel: about 18 MB); the API never imports this module. A reading is recorded only when it
differs from the last one (see ``repository.record_changes``): a page fetched again after a
crash, or by two crawlers, adds nothing; an undercut event is written with the change that made
it, so there is one per change, never one per fetch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from agora.core.outbox import record_event
from agora.pricewatch import repository
from agora.pricewatch.extract import Reading, read_page

UNDERCUT_TOPIC = "pricewatch.undercut"
NEAR_PRICE_FRACTION = 0.10


async def record_pages(
    session: AsyncSession, pages: Sequence[tuple[str, bytes, str]]
) -> list[tuple[bool, int]]:
    """Read fetched pages (URL, body, Content-Type) and record the changed readings with their
    undercut events; per page, whether it changed and how urgent it is (0-100: near our price
    is urgent)."""
    targets = await repository.watched_pages(session, [page[0] for page in pages])
    variant_ids = [t.variant_id for t in targets.values() if t.variant_id is not None]
    ours = await repository.variant_prices(session, variant_ids) if variant_ids else {}
    readings: dict[str, Reading] = {}
    for url, body, content_type in pages:
        target = targets.get(url)
        if target is None:
            continue
        reading = read_page(body, url, target.rules, content_type)
        if reading is not None:
            readings[url] = reading
    changed = await repository.record_changes(
        session,
        [
            repository.NewReading(
                targets[url].id, reading.price_amount, reading.currency, reading.in_stock
            )
            for url, reading in readings.items()
            if _differs(targets[url], reading)
        ],
    )
    verdicts = []
    for url, _, _ in pages:
        reading = readings.get(url)
        if reading is None:
            verdicts.append((False, 0))
            continue
        target = targets[url]
        our_price = ours.get(target.variant_id) if target.variant_id else None
        if target.id in changed and our_price is not None:
            _note_undercut(session, target, reading, our_price)
        verdicts.append((target.id in changed, _urgency(reading, our_price)))
    return verdicts


def _differs(target: repository.WatchedPage, reading: Reading) -> bool:
    """Whether a reading differs from the target's as loaded (the UPDATE checks it again)."""
    return (target.price_amount, target.currency, target.in_stock) != (
        reading.price_amount,
        reading.currency,
        reading.in_stock,
    )


def _note_undercut(
    session: AsyncSession,
    target: repository.WatchedPage,
    reading: Reading,
    our_price: tuple[int, str],
) -> None:
    amount, currency = our_price
    if reading.currency != currency or reading.price_amount >= amount:
        return
    record_event(
        session,
        UNDERCUT_TOPIC,
        {
            "target_id": target.id,
            "url": target.url,
            "variant_id": target.variant_id,
            "price": {"amount": reading.price_amount, "currency": currency},
            "our_price": {"amount": amount, "currency": currency},
            "gap": amount - reading.price_amount,
            "in_stock": reading.in_stock,
            "observed_at": dt.datetime.now(dt.UTC),
        },
    )


def _urgency(reading: Reading, our_price: tuple[int, str] | None) -> int:
    """100 at our price, falling to 0 at ``NEAR_PRICE_FRACTION`` away from it."""
    if our_price is None or reading.currency != our_price[1] or our_price[0] <= 0:
        return 0
    distance = abs(reading.price_amount - our_price[0]) / our_price[0]
    return round(100 * max(0.0, 1 - distance / NEAR_PRICE_FRACTION))
