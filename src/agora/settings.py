"""Configuration from the environment (prefix ``AGORA_``) or a ``.env`` file.

Every variable of the deployment is declared here, once, with its default, so that the rest of
the code reads typed settings instead of ``os.environ``.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from agora import __version__

DEFAULT_SECRET_KEY = "agora-development-secret-key-change-me"  # noqa: S105 - refused in production
KNOWN_PAYMENT_PROVIDERS = frozenset({"dev", "stripe", "alipay", "wechatpay"})


class Settings(BaseSettings):
    """All settings of one Agora process."""

    model_config = SettingsConfigDict(
        env_prefix="AGORA_", env_file=".env", extra="ignore", frozen=True
    )

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path(".agora")
    database_url: str | None = None
    redis_url: str | None = None
    broker_url: str | None = None
    task_queue: str = "agora"
    # Connections each API process keeps to PostgreSQL (opened as needed), as many as
    # SQLAlchemy's own default. More is not faster on a database with few cores: requests
    # waiting for one hot row then queue inside PostgreSQL, where busy backends cost it CPU,
    # instead of in the API (docs/performance-history.md, "Checkout: five connections a
    # process").
    database_pool_size: int = Field(5, ge=1)
    # Seconds a request waits for a pooled connection before it answers 503.
    database_pool_timeout: float = Field(10.0, gt=0)
    # Deadlines of every Redis command; generous enough for a loaded event loop in a stampede,
    # short enough that a hung Redis answers 503 instead of hanging requests.
    redis_socket_timeout: float = 5.0
    redis_connect_timeout: float = 5.0
    redis_retry_after: int = 5
    secret_key: SecretStr = Field(SecretStr(DEFAULT_SECRET_KEY), validate_default=True)
    log_level: str = "INFO"
    log_json: bool | None = None

    cors_origins: str = ""
    trusted_proxies: str = ""
    max_body_size: int = 1_048_576
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    rate_limit_default: str = "600/minute"
    # Failed password attempts, per account and address, per address, and per account from
    # everywhere: one address can spend at most a tenth of the account's backstop.
    rate_limit_login: str = "10/hour"
    rate_limit_login_ip: str = "100/hour"
    rate_limit_login_account: str = "100/hour"
    rate_limit_register: str = "20/hour"

    cache_local_ttl: float = 30.0
    cache_local_max_entries: int = 10_000
    cache_redis_ttl: int = 600
    catalog_cache_control: str = "public, max-age=30, stale-while-revalidate=60"

    order_payment_timeout: int = 900
    order_expiry_sweep_interval: float = 30.0
    outbox_relay_interval: float = 5.0

    rate_limit_flash_sale_buyer: str = "5/second"
    rate_limit_flash_sale_ip: str = "200/second"
    flash_sale_claim_idle: float = 30.0
    flash_sale_reconcile_interval: float = 30.0
    payment_providers: str = Field("dev", validate_default=True)
    public_base_url: str = "http://127.0.0.1:8000"
    payment_http_timeout: float = 10.0
    payment_http_retries: int = 2
    # Payment openings each API process runs at once. An opening holds a pooled connection while
    # its provider answers (up to the timeout, for each try): the cap, at most one below the
    # pool's size, leaves the rest of the pool to every other request if a provider hangs.
    # Openings past it wait up to ``database_pool_timeout`` seconds, then answer 503.
    payment_openings_in_flight: int = Field(2, ge=1)
    payment_reconcile_after: int = 300
    payment_reconcile_interval: float = 60.0

    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"

    alipay_app_id: str | None = None
    alipay_app_private_key: SecretStr | None = None
    alipay_public_key: str | None = None
    alipay_gateway: str = "https://openapi.alipay.com/gateway.do"
    alipay_return_url: str | None = None

    wechatpay_mchid: str | None = None
    wechatpay_appid: str | None = None
    wechatpay_apiv3_key: SecretStr | None = None
    wechatpay_private_key: SecretStr | None = None
    wechatpay_cert_serial: str | None = None
    wechatpay_platform_public_key: str | None = None
    wechatpay_platform_serial: str | None = None
    wechatpay_api_base: str = "https://api.mch.weixin.qq.com"

    webhook_allow_private: bool = False
    webhook_timeout: float = 10.0
    webhook_retry_base: float = 30.0
    webhook_retry_max_delay: float = 6 * 3600.0
    webhook_retry_window: float = 3 * 24 * 3600.0
    webhook_disable_after: float = 3 * 24 * 3600.0
    webhook_secret_overlap: float = 24 * 3600.0
    webhook_dispatch_interval: float = 10.0
    grpc_port: int = 50051
    service_keys: SecretStr = SecretStr("")

    log_retention_days: int = 7
    log_rollup_retention_days: int = 90
    log_partitions_ahead_days: int = 2
    log_buffer_max_batches: int = 20_000
    log_worker_batch: int = 50
    log_worker_claim_idle: float = 30.0
    rate_limit_log_ingest: str = "100000/second"
    log_self_requests: bool = True
    log_self_queue_max: int = 50_000
    log_self_flush_interval: float = 0.2
    log_tail_max_lines_per_second: int = 500
    log_maintenance_interval: float = 3600.0
    alert_evaluation_interval: float = 5.0
    alert_delivery_retries: int = 5
    crawler_allow_private: bool = False
    crawler_contact_url: str | None = None
    crawler_concurrency: int = 32
    crawler_lease_ttl: float = 60.0
    crawler_fetch_timeout: float = 15.0
    crawler_max_page_bytes: int = 2_000_000
    crawler_max_redirects: int = 5
    crawler_robots_ttl: int = 3600
    crawler_robots_retry: float = 600.0
    crawler_start_margin_ms: int = 20
    crawler_breaker_threshold: int = 5
    crawler_breaker_cooldown: float = 60.0
    crawler_flush_interval: float = 0.5
    crawler_batch_size: int = 200
    proxy_port: int = 8080
    http_keepalive_timeout: int = 75

    # Each check names one variable, so that every problem is reported at once, on its own line.
    # ``env`` is declared first: the checks below see it in ``info.data``.
    @field_validator("payment_providers")
    @classmethod
    def _known_providers(cls, value: str, info: ValidationInfo) -> str:
        unknown = set(_split(value)) - KNOWN_PAYMENT_PROVIDERS
        if unknown:
            raise ValueError(f"unknown payment providers: {', '.join(sorted(unknown))}")
        if info.data.get("env") == "production" and "dev" in _split(value):
            raise _unsafe("the dev payment provider cannot be enabled in production")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        for part in _split(value):
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"not an address or CIDR network: {part!r}") from None
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_is_safe(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if info.data.get("env") != "production":
            return value
        if value.get_secret_value() == DEFAULT_SECRET_KEY:
            raise _unsafe("must be set to a secret of your own in production")
        if len(value.get_secret_value()) < 32:
            raise _unsafe("must be at least 32 characters in production")
        return value

    @property
    def enabled_payment_providers(self) -> frozenset[str]:
        """The payment providers named by ``AGORA_PAYMENT_PROVIDERS``."""
        return frozenset(_split(self.payment_providers))

    @property
    def payment_opening_slots(self) -> int:
        """Payment openings a process runs at once: ``AGORA_PAYMENT_OPENINGS_IN_FLIGHT``, kept
        one below the pool's size so that a hung provider never takes the whole pool (one with
        a pool of one connection)."""
        return max(1, min(self.payment_openings_in_flight, self.database_pool_size - 1))

    @property
    def service_key_list(self) -> list[str]:
        """The service keys (``AGORA_SERVICE_KEYS``, comma separated) other systems call with."""
        return _split(self.service_keys.get_secret_value())

    @property
    def is_production(self) -> bool:
        """Whether this process runs in production."""
        return self.env == "production"

    @property
    def cors_origin_list(self) -> list[str]:
        """The origins allowed by CORS, from the comma-separated ``AGORA_CORS_ORIGINS``."""
        return _split(self.cors_origins)

    @property
    def crawler_user_agent(self) -> str:
        """The User-Agent of every crawler request, naming who to contact about it."""
        contact = self.crawler_contact_url or f"{self.public_base_url.rstrip('/')}/docs"
        return f"AgoraPriceWatch/{__version__} (+{contact})"

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The networks whose ``X-Forwarded-For`` is believed (``AGORA_TRUSTED_PROXIES``)."""
        return [
            str(ipaddress.ip_network(part, strict=False)) for part in _split(self.trusted_proxies)
        ]

    @property
    def wants_json_logs(self) -> bool:
        """JSON log lines in production (or when asked), readable lines otherwise."""
        return self.log_json if self.log_json is not None else self.is_production


def configuration_problems(error: ValidationError) -> list[str]:
    """One line per problem of a configuration, naming its variable: what an operator reads."""
    lines = []
    for problem in error.errors(include_url=False):
        variable = "AGORA_" + str(problem["loc"][0]).upper() if problem["loc"] else "AGORA_*"
        lines.append(f"{variable}: {problem['msg']}")
    return lines


def _unsafe(message: str) -> PydanticCustomError:
    return PydanticCustomError("unsafe_in_production", message)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
