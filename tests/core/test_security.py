"""Password hashing: argon2id with today's parameters, and a dummy check for unknown accounts."""

from __future__ import annotations

from argon2 import PasswordHasher

from agora.core.security import (
    _dummy_hash,
    hash_password,
    password_needs_rehash,
    refresh_token_digest,
    verify_password,
)


async def test_a_password_verifies_against_its_own_hash_only() -> None:
    stored = await hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert await verify_password(stored, "correct horse battery staple")
    assert not await verify_password(stored, "Correct horse battery staple")
    assert not await verify_password("not a hash", "anything")


async def test_an_unknown_account_costs_a_real_verification_and_never_matches() -> None:
    assert not password_needs_rehash(_dummy_hash())  # same parameters, hence the same cost
    assert not await verify_password(None, "")


def test_weaker_hashes_are_flagged_for_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("pw")
    assert password_needs_rehash(weak)


def test_refresh_tokens_are_stored_as_sha256_digests() -> None:
    assert len(refresh_token_digest("token")) == 64
    assert refresh_token_digest("token") != refresh_token_digest("token2")
