"""The guarded client connects to the address it checked, under the target's name: the name is
resolved once, and the ``Host`` header, TLS SNI and the certificate check are all the name's.

A real HTTPS receiver on loopback holds a certificate for the made-up name only (no IP address in
it), signed by an authority made for the test and trusted through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agora.core.guarded_http import guarded_client
from agora.core.tls import verified_tls
from tests.rebinding import RebindingName
from tests.support import free_port

NAME = "receiver.rebinding.test"


@dataclass
class TlsReceiver:
    """An HTTPS server on loopback: the server names (SNI) and ``Host`` headers it was sent."""

    port: int = field(default_factory=free_port)
    server_names: list[str | None] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)

    async def start(self, context: ssl.SSLContext) -> web.AppRunner:
        context.sni_callback = lambda _socket, name, _context: self.server_names.append(name)
        application = web.Application()
        application.router.add_get("/", self._answer)
        runner = web.AppRunner(application, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=context).start()
        return runner

    async def _answer(self, request: web.Request) -> web.Response:
        self.hosts.append(request.host)
        return web.Response(text="ok")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificates(directory: Path, host: str) -> tuple[Path, ssl.SSLContext]:
    """A file holding a fresh authority's certificate, and a server context presenting a
    certificate for ``host`` that it signed."""
    now = dt.datetime.now(dt.UTC)
    authority_key = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    authority = (
        x509.CertificateBuilder()
        .subject_name(_name("Test authority"))
        .issuer_name(_name("Test authority"))
        .public_key(authority_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(authority_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(authority.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(authority_key, hashes.SHA256())
    )
    authority_file = directory / "authority.pem"
    authority_file.write_bytes(authority.public_bytes(serialization.Encoding.PEM))
    chain_file, key_file = directory / "server.pem", directory / "server.key"
    chain_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain_file, key_file)
    return authority_file, context


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> RebindingName:
    """``NAME``, answered with loopback once and never again."""
    return RebindingName(NAME).install(monkeypatch)


async def _receiver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, certified_host: str
) -> AsyncIterator[TlsReceiver]:
    authority_file, context = _certificates(tmp_path, certified_host)
    monkeypatch.setenv("SSL_CERT_FILE", str(authority_file))
    verified_tls.cache_clear()  # the process's TLS context is built from the environment once
    receiver = TlsReceiver()
    runner = await receiver.start(context)
    yield receiver
    await runner.cleanup()
    verified_tls.cache_clear()


@pytest.fixture
async def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TlsReceiver]:
    """A receiver whose certificate is for ``NAME``."""
    async for running in _receiver(tmp_path, monkeypatch, NAME):
        yield running


@pytest.fixture
async def impostor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TlsReceiver]:
    """A receiver whose certificate is for another name."""
    async for running in _receiver(tmp_path, monkeypatch, "other.rebinding.test"):
        yield running


async def test_https_goes_to_the_checked_address_and_verifies_the_name(
    target: RebindingName, receiver: TlsReceiver
) -> None:
    async with guarded_client(allow_private=True, timeout=5) as client:
        answer = await client.get(f"https://{NAME}:{receiver.port}/")

    assert answer.text == "ok"
    assert target.lookups == 1
    assert receiver.server_names == [NAME]
    assert receiver.hosts == [f"{NAME}:{receiver.port}"]


async def test_a_certificate_for_another_name_is_refused(
    target: RebindingName, impostor: TlsReceiver
) -> None:
    async with guarded_client(allow_private=True, timeout=5) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"https://{NAME}:{impostor.port}/")

    assert impostor.server_names == [NAME]
    assert impostor.hosts == []
