"""RSA keys: loading them from settings (PEM text, ``@/path/to.pem``, or the bare base64 body
that Alipay's and WeChat Pay's key tools print, no ``-----BEGIN`` lines), and the SHA256withRSA
signatures both of those providers use, so each provider states only what it signs."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import (
    load_der_private_key,
    load_der_public_key,
    load_pem_private_key,
    load_pem_public_key,
)
from cryptography.x509 import load_pem_x509_certificate


class InvalidKey(ValueError):
    """A configured key cannot be read or is not an RSA key."""


def key_text(value: str) -> str:
    """The key text of a setting: the file's content for ``@/path``, the value itself otherwise."""
    value = value.strip()
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_text().strip()
        except OSError as error:
            raise InvalidKey(f"cannot read key file {path}: {error.strerror}") from error
    return value.replace("\\n", "\n")


def load_private_key(value: str) -> RSAPrivateKey:
    """An RSA private key from PEM (PKCS#1 or PKCS#8), ``@/path``, or bare base64 DER."""
    text = key_text(value)
    try:
        if text.startswith("-----"):
            key = load_pem_private_key(text.encode(), password=None)
        else:
            key = load_der_private_key(_base64_body(text), password=None)
    except (ValueError, TypeError) as error:
        raise InvalidKey(f"not a readable private key: {error}") from error
    if not isinstance(key, RSAPrivateKey):
        raise InvalidKey("the private key is not an RSA key")
    return key


def load_public_key(value: str) -> RSAPublicKey:
    """An RSA public key from PEM (a public key or an X.509 certificate), ``@/path`` or base64."""
    text = key_text(value)
    key: object
    try:
        if "BEGIN CERTIFICATE" in text:
            key = load_pem_x509_certificate(text.encode()).public_key()
        elif text.startswith("-----"):
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(_base64_body(text))
    except (ValueError, TypeError) as error:
        raise InvalidKey(f"not a readable public key: {error}") from error
    if not isinstance(key, RSAPublicKey):
        raise InvalidKey("the public key is not an RSA key")
    return key


def rsa_sign(key: RSAPrivateKey, message: bytes) -> str:
    """SHA256withRSA (PKCS#1 v1.5) of ``message`` with ``key``, base64."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verifies(key: RSAPublicKey, message: bytes, signature: str) -> bool:
    """Whether ``signature`` (base64) is ``key``'s SHA256withRSA signature of ``message``."""
    try:
        key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def _base64_body(text: str) -> bytes:
    compact = "".join(text.split())
    try:
        return base64.b64decode("\n".join(textwrap.wrap(compact, 64)), validate=False)
    except ValueError as error:
        raise InvalidKey("not base64") from error
