"""The outgoing notification signature, checked the way a receiver following the docs checks it."""

from __future__ import annotations

import hashlib
import hmac

from agora.core.signing import is_valid_signature, signature_header

BODY = b'{"id":"evt_1","type":"order.paid"}'


def test_header_is_hmac_of_timestamp_dot_body() -> None:
    header = signature_header(["whsec_a"], BODY, timestamp=1_700_000_000)
    expected = hmac.new(b"whsec_a", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_rotation_signs_with_every_secret() -> None:
    header = signature_header(["old", "new"], BODY, timestamp=1_700_000_000)
    assert header.count("v1=") == 2
    assert is_valid_signature(header, "old", BODY, now=1_700_000_000)
    assert is_valid_signature(header, "new", BODY, now=1_700_000_000)


def test_refuses_other_secret_other_body_and_stale_timestamp() -> None:
    header = signature_header(["secret"], BODY, timestamp=1_700_000_000)
    assert not is_valid_signature(header, "other", BODY, now=1_700_000_000)
    assert not is_valid_signature(header, "secret", BODY + b" ", now=1_700_000_000)
    assert not is_valid_signature(header, "secret", BODY, now=1_700_000_000 + 301)
    assert not is_valid_signature("garbage", "secret", BODY)
