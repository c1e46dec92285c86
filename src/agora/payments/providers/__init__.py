"""The payment providers enabled by ``AGORA_PAYMENT_PROVIDERS``, built once per settings.

Keys are parsed once here (PEM text, ``@/path/to.pem`` or bare base64), so verifying a callback
costs one signature check, not a key parse. A provider that is enabled but misconfigured fails
loudly when first used, naming the missing setting.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import SecretStr

from agora.payments.providers.alipay import AlipayProvider
from agora.payments.providers.base import PaymentProvider
from agora.payments.providers.dev import DevProvider
from agora.payments.providers.http import ProviderHttp
from agora.payments.providers.keys import load_private_key, load_public_key
from agora.payments.providers.stripe import StripeProvider
from agora.payments.providers.wechatpay import WechatPayProvider
from agora.settings import Settings


class ProviderNotConfigured(RuntimeError):
    """An enabled provider lacks a setting it needs."""


@lru_cache(maxsize=8)
def enabled_providers(settings: Settings) -> dict[str, PaymentProvider]:
    """Every enabled provider by name."""
    builders = {
        "dev": _dev,
        "stripe": _stripe,
        "alipay": _alipay,
        "wechatpay": _wechatpay,
    }
    return {name: builders[name](settings) for name in sorted(settings.enabled_payment_providers)}


def _http(settings: Settings, base_url: str) -> ProviderHttp:
    return ProviderHttp(
        base_url, timeout=settings.payment_http_timeout, retries=settings.payment_http_retries
    )


def _required(settings: Settings, name: str) -> str:
    value = getattr(settings, name)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not value:
        raise ProviderNotConfigured(f"AGORA_{name.upper()} must be set for this provider")
    return str(value)


def _dev(settings: Settings) -> PaymentProvider:
    return DevProvider()


def _stripe(settings: Settings) -> PaymentProvider:
    secrets = _required(settings, "stripe_webhook_secret").split(",")
    return StripeProvider(
        _required(settings, "stripe_api_key"),
        [secret.strip() for secret in secrets if secret.strip()],
        _http(settings, settings.stripe_api_base),
    )


def _alipay(settings: Settings) -> PaymentProvider:
    return AlipayProvider(
        _required(settings, "alipay_app_id"),
        load_private_key(_required(settings, "alipay_app_private_key")),
        load_public_key(_required(settings, "alipay_public_key")),
        _http(settings, settings.alipay_gateway),
        return_url=settings.alipay_return_url,
    )


def _wechatpay(settings: Settings) -> PaymentProvider:
    return WechatPayProvider(
        mchid=_required(settings, "wechatpay_mchid"),
        appid=_required(settings, "wechatpay_appid"),
        apiv3_key=_required(settings, "wechatpay_apiv3_key"),
        private_key=load_private_key(_required(settings, "wechatpay_private_key")),
        cert_serial=_required(settings, "wechatpay_cert_serial"),
        platform_public_key=load_public_key(_required(settings, "wechatpay_platform_public_key")),
        platform_serial=_required(settings, "wechatpay_platform_serial"),
        http=_http(settings, settings.wechatpay_api_base),
    )
