"""``create_app()``: the ASGI application with its routers, middleware, error handlers, lifespan."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from agora import __version__
from agora.accounts.api import router as accounts_router
from agora.cart.api import ADD_ITEM_PATH
from agora.cart.api import PREFIX as CART_PREFIX
from agora.cart.api import router as cart_router
from agora.cart.direct_cart import direct_add_item, direct_open_cart
from agora.catalog.api import router as catalog_router
from agora.catalog.service import register_stock_lookup
from agora.core.apidocs import install_api_docs
from agora.core.bulkhead import Bulkhead
from agora.core.cache import TwoLevelCache
from agora.core.coalesce import coalescing
from agora.core.collector import freeze_start_up
from agora.core.db import Database
from agora.core.dependencies import AppServices, ServicesDep
from agora.core.edge import EdgeCache, mark_public
from agora.core.embedded import resolve_service_urls
from agora.core.errors import install_error_handlers, problem_response
from agora.core.jobs import configure_celery
from agora.core.middleware import install_http_middleware, install_proxy_headers
from agora.core.observability import RequestContextMiddleware, configure_logging, metrics_response
from agora.core.openapi import document_problems
from agora.core.ratelimit import RateLimiter
from agora.core.redis import Breaker, create_redis, create_subscriber
from agora.core.validation import refuse_unstorable_input
from agora.crawler.api import router as crawler_router
from agora.dashboard.api import STATIC_PATH, static_files
from agora.dashboard.api import router as dashboard_router
from agora.dashboard.sections import DASHBOARD_SECTIONS
from agora.dashboard.snapshot import SnapshotBoard
from agora.flashsale.api import PURCHASE_PATH
from agora.flashsale.api import router as flashsale_router
from agora.flashsale.direct_purchase import direct_purchase
from agora.inventory import service as inventory_service
from agora.inventory.api import router as inventory_router
from agora.logs.alerts_api import router as alerts_router
from agora.logs.api import INGEST_PATH
from agora.logs.api import router as logs_router
from agora.logs.selflog import RequestLogSink
from agora.logs.tail_api import router as logs_tail_router
from agora.orders.api import CHECKOUT_PATH
from agora.orders.api import router as orders_router
from agora.orders.direct_checkout import direct_checkout
from agora.payments.api import router as payments_router
from agora.payments.direct_callback import direct_callbacks
from agora.pricewatch.api import router as pricewatch_router
from agora.realtime.api import router as realtime_router
from agora.realtime.hub import EventHub
from agora.settings import Settings, get_settings
from agora.webhooks.api import router as webhooks_router

API_PREFIX = "/api/v1"
PAYMENT_WEBHOOKS_PREFIX = API_PREFIX + "/payments/webhooks/"
_READINESS_TIMEOUT_S = 2.0


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; services are opened in its lifespan, not at import."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.wants_json_logs)
    request_log = (
        RequestLogSink(settings.log_self_queue_max, settings.log_self_flush_interval)
        if settings.log_self_requests
        else None
    )
    # Cached public reads answered before routing; emptied with the local cache (core/edge.py).
    edge = EdgeCache(
        local_ttl=settings.cache_local_ttl, local_max_entries=settings.cache_local_max_entries
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        urls = await asyncio.to_thread(
            resolve_service_urls,
            settings.data_dir,
            settings.database_url,
            settings.redis_url,
            settings.broker_url,
        )
        configure_celery(urls.broker_url, settings.task_queue)
        database = Database(
            urls.database_url,
            pool_size=settings.database_pool_size,
            pool_timeout=settings.database_pool_timeout,
        )
        # Nothing here needs Redis to answer: the API starts, and reports not ready, while
        # Redis is down; the subscriptions keep trying in the background.
        redis = create_redis(urls.redis_url, settings)
        subscriber = create_subscriber(urls.redis_url, settings)
        breaker = Breaker(cooldown=settings.redis_retry_after)
        cache = TwoLevelCache.from_settings(redis, settings, subscriber=subscriber, breaker=breaker)
        cache.follow(edge)
        app.state.services = AppServices(
            settings=settings,
            database=database,
            redis=redis,
            rate_limiter=RateLimiter(redis, breaker=breaker),
            cache=cache,
        )
        # An opening waits on its provider inside its transaction: a hung provider must not take
        # every pooled connection (core/bulkhead.py).
        app.state.payment_openings = Bulkhead(
            "payment_openings",
            limit=settings.payment_opening_slots,
            wait=settings.database_pool_timeout,
            retry_after=settings.redis_retry_after,
        )
        app.state.dashboard_board = SnapshotBoard(app.state.services, DASHBOARD_SECTIONS)
        app.state.event_hub = EventHub(subscriber)
        await app.state.event_hub.start()
        if request_log is not None:
            request_log.start(redis, settings)
        _freeze_loaded_objects()
        try:
            # Notices holding ``redis`` may be coalesced: it closes only after they are sent.
            async with cache.invalidation_subscriber(), coalescing(redis):
                yield
        finally:
            if request_log is not None:
                await request_log.stop()
            await app.state.event_hub.stop()
            await subscriber.aclose()
            await redis.aclose()
            await database.dispose()

    app = FastAPI(
        title="Agora",
        version=__version__,
        summary="A fast, async, headless commerce backend.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(refuse_unstorable_input)],
        # Agora reports through Prometheus and its logs, not OpenTelemetry: FastAPI's native
        # telemetry off, it no longer looks up the global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.edge = edge
    register_stock_lookup(inventory_service.in_stock_variant_ids)
    install_error_handlers(app, retry_after=settings.redis_retry_after)
    # Provider callbacks come from a few provider IPs in bursts and are authenticated by their
    # signatures: a 429 would only delay payments, so they skip the per-client default budget.
    # A flash-sale purchase spends the default budget with its own ones, in one Redis call;
    # log ingest spends a per-key budget of lines instead.
    install_http_middleware(
        app,
        settings,
        api_prefix=API_PREFIX,
        unmetered_prefixes=(PAYMENT_WEBHOOKS_PREFIX,),
        self_metered_paths=(API_PREFIX + PURCHASE_PATH, API_PREFIX + INGEST_PATH),
        edge=edge,
        # Well-formed flash-sale purchases and provider callbacks are answered before routing
        # (the rest by their routes).
        direct_handlers=[
            direct_purchase(API_PREFIX + PURCHASE_PATH),
            direct_callbacks(PAYMENT_WEBHOOKS_PREFIX, settings),
        ],
        # Well-formed checkouts and cart additions likewise, after spending the default budget.
        metered_handlers=[
            direct_checkout(API_PREFIX + CHECKOUT_PATH),
            direct_open_cart(API_PREFIX + CART_PREFIX),
            direct_add_item(API_PREFIX + CART_PREFIX + ADD_ITEM_PATH),
        ],
    )
    # Agora's own requests become log lines, queued in memory and flushed off the request path.
    app.add_middleware(RequestContextMiddleware, request_sink=request_log)
    document_problems(app, metered_prefix=API_PREFIX, unmetered_prefixes=(PAYMENT_WEBHOOKS_PREFIX,))
    install_proxy_headers(app, settings)
    app.include_router(_operations_router())
    # Routes are matched in the order they are included, each route a regex tried in turn: the
    # hot writes that arrive in bursts (flash-sale purchases, provider callbacks) and the three
    # requests of a checkout come first, so that matching them does not walk every other route
    # (25 µs instead of 100-130 µs). Their paths share no prefix with the routers they now
    # precede, and no path of theirs matches a payments route, so no request changes hands.
    app.include_router(flashsale_router, prefix=API_PREFIX)
    app.include_router(payments_router, prefix=API_PREFIX)
    app.include_router(cart_router, prefix=API_PREFIX)
    app.include_router(orders_router, prefix=API_PREFIX)
    install_api_docs(app)
    app.include_router(accounts_router, prefix=API_PREFIX)
    app.include_router(catalog_router, prefix=API_PREFIX)
    app.include_router(inventory_router, prefix=API_PREFIX)
    app.include_router(realtime_router)
    app.include_router(logs_router, prefix=API_PREFIX)
    app.include_router(logs_tail_router)
    app.include_router(alerts_router, prefix=API_PREFIX)
    app.include_router(dashboard_router)
    app.mount(STATIC_PATH, static_files, name="dashboard-static")
    app.include_router(pricewatch_router, prefix=API_PREFIX)
    app.include_router(crawler_router, prefix=API_PREFIX)
    app.include_router(webhooks_router, prefix=API_PREFIX)
    return app


@functools.cache
def _freeze_loaded_objects() -> None:
    """``freeze_start_up`` once per process, at its first start-up (the tests start many apps in
    one process): a full collection cost a purchase about a third of its CPU."""
    freeze_start_up()


_ALIVE = b'{"status":"ok"}'


def _operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    # A liveness probe is polled often and its answer never changes: encoded once, and kept
    # by the edge cache (core/edge.py) with no tag to invalidate it.
    @router.get("/healthz", summary="The process is alive", response_model=dict[str, str])
    async def healthz(request: Request) -> Response:
        mark_public(request.scope.setdefault("state", {}), ())
        return Response(_ALIVE, media_type="application/json")

    @router.get("/readyz", summary="PostgreSQL and Redis are reachable", response_model=None)
    async def readyz(services: ServicesDep) -> dict[str, str] | Response:
        checks = {"database": _check_database(services), "redis": _check_redis(services)}
        results = await asyncio.gather(*checks.values())
        status = {
            name: "ok" if ok else "unreachable" for name, ok in zip(checks, results, strict=True)
        }
        if all(results):
            return {"status": "ok", **status}
        return problem_response(
            503, "Not ready", "A dependency is unreachable.", "not_ready", checks=status
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        return metrics_response(request)

    return router


async def _check_database(services: AppServices) -> bool:
    try:
        async with (
            asyncio.timeout(_READINESS_TIMEOUT_S),
            services.database.engine.connect() as conn,
        ):
            await conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


async def _check_redis(services: AppServices) -> bool:
    try:
        async with asyncio.timeout(_READINESS_TIMEOUT_S):
            return bool(await services.redis.ping())
    except Exception:
        return False
