"""Outbound HTTPS clients share one TLS context, built once per process, that verifies
certificates and host names as httpx's default does."""

from __future__ import annotations

import ssl

from agora.core.tls import verified_tls


def test_one_verifying_context_serves_every_client() -> None:
    context = verified_tls()
    assert context is verified_tls()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 100  # certifi's roots, as httpx loads them
