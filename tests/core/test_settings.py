"""Settings: production refuses unsafe defaults with a clear message."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agora.settings import Settings, configuration_problems

STRONG_SECRET = "x" * 48


def make(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_production_refuses_the_default_secret_key() -> None:
    with pytest.raises(ValidationError, match="must be set to a secret of your own"):
        make(env="production", payment_providers="stripe")


def test_production_refuses_a_short_secret_key() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        make(env="production", secret_key="short", payment_providers="stripe")


def test_production_refuses_the_dev_payment_provider() -> None:
    with pytest.raises(ValidationError, match="dev payment provider"):
        make(env="production", secret_key=STRONG_SECRET, payment_providers="dev,stripe")


def test_every_problem_is_reported_at_once_naming_its_variable() -> None:
    with pytest.raises(ValidationError) as refused:
        make(env="production", max_body_size="big")
    assert configuration_problems(refused.value) == [
        "AGORA_SECRET_KEY: must be set to a secret of your own in production",
        "AGORA_MAX_BODY_SIZE: Input should be a valid integer, unable to parse string as an "
        "integer",
        "AGORA_PAYMENT_PROVIDERS: the dev payment provider cannot be enabled in production",
    ]


def test_production_accepts_safe_settings() -> None:
    settings = make(env="production", secret_key=STRONG_SECRET, payment_providers="stripe")
    assert settings.is_production
    assert settings.enabled_payment_providers == {"stripe"}
    assert settings.wants_json_logs


def test_unknown_payment_provider_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown payment providers: paypal"):
        make(payment_providers="dev,paypal")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGORA_ORDER_PAYMENT_TIMEOUT", "60")
    monkeypatch.setenv("AGORA_CORS_ORIGINS", "https://shop.example, https://admin.example")
    settings = make()
    assert settings.order_payment_timeout == 60
    assert settings.cors_origin_list == ["https://shop.example", "https://admin.example"]


def test_trusted_proxies_are_addresses_or_networks_and_none_by_default() -> None:
    assert make().trusted_proxy_list == []
    proxies = make(trusted_proxies="10.0.0.7, 172.30.0.0/24,::1")
    assert proxies.trusted_proxy_list == ["10.0.0.7/32", "172.30.0.0/24", "::1/128"]
    for wrong in ("*", "nginx", "10.0.0.0/33"):
        with pytest.raises(ValidationError, match="not an address or CIDR network"):
            make(trusted_proxies=wrong)


@pytest.mark.parametrize(
    ("pool_size", "openings", "slots"), [(5, 2, 2), (3, 2, 2), (3, 9, 2), (1, 2, 1), (20, 8, 8)]
)
def test_payment_openings_leave_a_pooled_connection_to_other_requests(
    pool_size: int, openings: int, slots: int
) -> None:
    settings = make(database_pool_size=pool_size, payment_openings_in_flight=openings)
    assert settings.payment_opening_slots == slots
