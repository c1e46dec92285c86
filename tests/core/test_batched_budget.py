"""The default budget spent in batches: the batch size and the error it allows."""

from __future__ import annotations

from agora.core.batched_budget import batch_size
from agora.core.ratelimit import rate_limit


def test_batches_are_one_percent_of_the_quota_within_bounds() -> None:
    assert batch_size(rate_limit("default", "3/minute")) == 1
    assert batch_size(rate_limit("default", "199/minute")) == 1
    assert batch_size(rate_limit("default", "600/minute")) == 6
    assert batch_size(rate_limit("default", "1000000/second")) == 32
