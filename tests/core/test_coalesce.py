"""Notices coalesced in the background inside ``coalescing()`` (the API), sent at once outside."""

from __future__ import annotations

import asyncio

from agora.core.coalesce import coalescing, send_coalesced


class Receiver:
    """What a ``deliver`` was handed, batch by batch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.delivered = asyncio.Event()

    async def deliver(self, items: list[int]) -> None:
        self.batches.append(items)
        self.delivered.set()


async def test_outside_coalescing_a_notice_is_sent_before_the_call_returns() -> None:
    receiver = Receiver()
    await send_coalesced(receiver.deliver, [1, 2, 1])
    assert receiver.batches == [[1, 2]]


async def test_inside_coalescing_notices_asked_together_go_out_once_in_the_background() -> None:
    receiver = Receiver()
    async with coalescing():
        for commit in range(50):  # fifty commits asking before the sender gets to run
            await send_coalesced(receiver.deliver, [commit % 5, 99])
        assert receiver.batches == []  # nobody waited for them
    # Leaving sends what is pending, each item once.
    assert receiver.batches == [[0, 99, 1, 2, 3, 4]]


async def test_notices_asked_after_a_batch_left_go_out_in_the_next() -> None:
    receiver = Receiver()
    async with coalescing():
        await send_coalesced(receiver.deliver, [1])
        await receiver.delivered.wait()  # the first batch leaves at once
        await send_coalesced(receiver.deliver, [2, 1])
    assert receiver.batches == [[1], [2, 1]]
    await send_coalesced(receiver.deliver, [3])  # outside again: at once
    assert receiver.batches[-1] == [3]


async def test_two_apps_on_one_loop_each_send_what_is_pending_when_they_stop() -> None:
    receiver = Receiver()
    async with coalescing():
        async with coalescing():
            await send_coalesced(receiver.deliver, [1])
        assert receiver.batches == [[1]]  # the inner one sent it on its way out
        await send_coalesced(receiver.deliver, [2])  # still coalescing for the outer one
    assert receiver.batches == [[1], [2]]
    await send_coalesced(receiver.deliver, [3])
    assert receiver.batches[-1] == [3]


async def test_items_holding_a_transport_are_coalesced_only_while_a_scope_keeps_it_open() -> None:
    receiver = Receiver()
    kept, other = object(), object()
    async with coalescing(kept):
        await send_coalesced(receiver.deliver, [1], holding=other)
        assert receiver.batches == [[1]]  # its caller may close it at once: sent now
        await send_coalesced(receiver.deliver, [2], holding=kept)
        await send_coalesced(receiver.deliver, [3], holding=kept)
        assert receiver.batches == [[1]]  # the scope keeps it open: in the background
    assert receiver.batches == [[1], [2, 3]]
    await send_coalesced(receiver.deliver, [4], holding=kept)  # the scope ended: at once
    assert receiver.batches[-1] == [4]
