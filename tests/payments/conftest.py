"""Fixtures of the payments tests: run-time keys, the providers' stand-in API, and settings
with every provider enabled and pointed at the stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agora.core.embedded import ServiceUrls
from agora.core.jobs import configure_celery
from agora.settings import Settings
from tests.conftest import TEST_DATA_DIR
from tests.payments import signing
from tests.payments.keys import RunKeys
from tests.payments.standin import ProviderStandIn
from tests.support import free_port


@pytest.fixture(scope="session")
def keys() -> RunKeys:
    """RSA keys generated for this run only."""
    return RunKeys.generate()


@pytest.fixture(scope="session")
async def standin_server(keys: RunKeys) -> AsyncIterator[ProviderStandIn]:
    """The providers' stand-in API on a free port, for the whole run."""
    standin = ProviderStandIn(keys)
    await standin.start(free_port())
    yield standin
    await standin.stop()


@pytest.fixture
def standin(standin_server: ProviderStandIn) -> ProviderStandIn:
    """The stand-in, with nothing received yet."""
    standin_server.reset()
    return standin_server


def payment_environment(keys: RunKeys, base_url: str) -> dict[str, str]:
    """``AGORA_*`` settings of every provider, pointed at the stand-in."""
    return {
        "AGORA_PAYMENT_PROVIDERS": "dev,stripe,alipay,wechatpay",
        "AGORA_PUBLIC_BASE_URL": "https://shop.example.com",
        "AGORA_PAYMENT_HTTP_TIMEOUT": "5",
        "AGORA_STRIPE_API_KEY": signing.STRIPE_API_KEY,
        "AGORA_STRIPE_WEBHOOK_SECRET": signing.STRIPE_SECRET,
        "AGORA_STRIPE_API_BASE": base_url,
        "AGORA_ALIPAY_APP_ID": signing.ALIPAY_APP_ID,
        "AGORA_ALIPAY_APP_PRIVATE_KEY": keys.alipay_app.private_pem,
        "AGORA_ALIPAY_PUBLIC_KEY": keys.alipay_platform.public_pem,
        "AGORA_ALIPAY_GATEWAY": base_url + "/gateway.do",
        "AGORA_WECHATPAY_MCHID": signing.WECHAT_MCHID,
        "AGORA_WECHATPAY_APPID": signing.WECHAT_APPID,
        "AGORA_WECHATPAY_APIV3_KEY": signing.WECHAT_APIV3_KEY,
        "AGORA_WECHATPAY_PRIVATE_KEY": keys.wechat_merchant.private_pem,
        "AGORA_WECHATPAY_CERT_SERIAL": signing.WECHAT_CERT_SERIAL,
        "AGORA_WECHATPAY_PLATFORM_PUBLIC_KEY": keys.wechat_platform.public_pem,
        "AGORA_WECHATPAY_PLATFORM_SERIAL": signing.WECHAT_PLATFORM_SERIAL,
        "AGORA_WECHATPAY_API_BASE": base_url,
    }


@pytest.fixture(scope="session")
def settings(service_urls: ServiceUrls, keys: RunKeys, standin_server: ProviderStandIn) -> Settings:
    """The test settings with every payment provider enabled."""
    values = {
        key.removeprefix("AGORA_").lower(): value
        for key, value in payment_environment(keys, standin_server.base_url).items()
    }
    return Settings(
        env="test",
        data_dir=TEST_DATA_DIR,
        database_url=service_urls.database_url,
        redis_url=service_urls.redis_url,
        broker_url=service_urls.broker_url,
        _env_file=None,  # type: ignore[call-arg]
        **values,
    )


@pytest.fixture(scope="session", autouse=True)
def test_broker(settings: Settings) -> None:
    """Jobs deferred by service calls made straight from a test go to the test broker, even when
    no app of the run has configured the publisher yet (Celery would default to a local AMQP)."""
    configure_celery(settings.broker_url or "", settings.task_queue)


@pytest.fixture(scope="session")
def service_env(
    service_env: dict[str, str], keys: RunKeys, standin_server: ProviderStandIn
) -> dict[str, str]:
    """Child processes get the payment settings too."""
    return {**service_env, **payment_environment(keys, standin_server.base_url)}
