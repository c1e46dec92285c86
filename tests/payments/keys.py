"""Test-only RSA keys, generated at run time (never stored): ours and the providers'."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass
class KeyPair:
    """A freshly generated RSA-2048 key pair, with its PEM forms."""

    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> KeyPair:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @cached_property
    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @cached_property
    def private_pem_pkcs1(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()

    @cached_property
    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


@dataclass
class RunKeys:
    """Every key the tests need: each side's signing key."""

    alipay_app: KeyPair  # ours: signs requests to Alipay
    alipay_platform: KeyPair  # Alipay's: signs notifies and answers
    wechat_merchant: KeyPair  # ours: signs requests to WeChat Pay
    wechat_platform: KeyPair  # WeChat Pay's: signs notifies and answers
    stranger: KeyPair  # anyone else's: forgeries

    @classmethod
    def generate(cls) -> RunKeys:
        return cls(*(KeyPair.generate() for _ in range(5)))
