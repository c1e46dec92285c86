"""The outgoing-request guard refuses non-public targets after resolving them."""

from __future__ import annotations

import pytest

from agora.core.netguard import UnsafeTarget, is_public_address, resolve_allowed


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",  # noqa: S104 - the address under test, not a bind
        "100.64.0.1",
        "224.0.0.1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


async def test_localhost_name_is_refused_after_resolution() -> None:
    with pytest.raises(UnsafeTarget, match="non-public"):
        await resolve_allowed("http://localhost:8080/hook", allow_private=False)


async def test_private_targets_allowed_when_asked() -> None:
    assert "127.0.0.1" in await resolve_allowed("http://127.0.0.1:9/x", allow_private=True)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "file:///etc/passwd", "/relative", "http://h:99999/"]
)
async def test_bad_shapes_are_refused(url: str) -> None:
    with pytest.raises(UnsafeTarget):
        await resolve_allowed(url, allow_private=True)
