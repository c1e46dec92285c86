"""The ``agora`` command line: run the stack, its parts, migrations and admin chores.

Commands import the application lazily, after the service URLs are in the environment, so that
every child process (API workers, Celery pool) sees the same configuration.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console

from agora.core.embedded import EmbeddedPostgres, EmbeddedRedis, ServiceUrls, resolve_service_urls
from agora.settings import configuration_problems, get_settings
from agora.stack.cli import stack_app

app = typer.Typer(help="Agora: a fast, async, headless commerce backend.", no_args_is_help=True)
services_app = typer.Typer(help="The embedded PostgreSQL and Redis.", no_args_is_help=True)
app.add_typer(services_app, name="services")
user_app = typer.Typer(help="Accounts.", no_args_is_help=True)
app.add_typer(user_app, name="user")
import_app = typer.Typer(help="Bulk imports.", no_args_is_help=True)
app.add_typer(import_app, name="import")
logs_app = typer.Typer(help="The log platform: loaders and the file shipper.", no_args_is_help=True)
app.add_typer(logs_app, name="logs")
app.add_typer(stack_app, name="stack")
console = Console(stderr=True)

HostOption = Annotated[str, typer.Option(help="Interface to listen on.")]
PortOption = Annotated[int, typer.Option(help="TCP port to listen on.")]
WorkersOption = Annotated[int, typer.Option(help="API worker processes.")]
_STOP_GRACE_S = 10.0
DEMO_STOCK_PER_VARIANT = 100


@app.callback()
def _refuse_bad_configuration() -> None:
    """Before any command: a configuration error prints one line per problem, naming its
    variable, and exits with status 2 (no traceback: it is the operator's to fix, not a bug)."""
    try:
        get_settings()
    except ValidationError as error:
        for line in configuration_problems(error):
            typer.echo(f"configuration error: {line}", err=True)
        raise typer.Exit(2) from None


def _export_service_urls() -> ServiceUrls:
    """Resolve the service URLs (starting embedded servers if needed) and export them."""
    settings = get_settings()
    urls = resolve_service_urls(
        settings.data_dir, settings.database_url, settings.redis_url, settings.broker_url
    )
    os.environ["AGORA_DATABASE_URL"] = urls.database_url
    os.environ["AGORA_REDIS_URL"] = urls.redis_url
    os.environ["AGORA_BROKER_URL"] = urls.broker_url
    get_settings.cache_clear()
    return urls


def _prepare_metrics_dir(name: str = "metrics") -> None:
    """A fresh folder where every process of a kind writes its Prometheus samples."""
    metrics_dir = (get_settings().data_dir / name).resolve()
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


@app.command()
def migrate() -> None:
    """Upgrade the database to the newest schema."""
    from agora.migrations import upgrade

    urls = _export_service_urls()
    upgrade(urls.database_url)
    console.print("[green]database is at the newest revision[/green]")


@app.command()
def api(
    host: HostOption = "127.0.0.1", port: PortOption = 8000, workers: WorkersOption = 1
) -> None:
    """Serve the HTTP and WebSocket API (``agora/serving.py``)."""
    from agora.serving import serve

    if "FORWARDED_ALLOW_IPS" in os.environ:
        console.print(
            "[yellow]FORWARDED_ALLOW_IPS is ignored: name the proxies whose X-Forwarded-For "
            "is believed in AGORA_TRUSTED_PROXIES[/yellow]"
        )
    _export_service_urls()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    else:
        _prepare_metrics_dir()
    serve("agora.app:create_app", host=host, port=port, workers=workers)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Task processes.")] = 2,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve the worker's Prometheus metrics on this port.")
    ] = None,
    name: Annotated[
        str, typer.Option(help="Node name, unique among the workers of one host.")
    ] = "agora",
) -> None:
    """Run a Celery worker."""
    _export_service_urls()
    if metrics_port is not None:
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            _prepare_metrics_dir("worker-metrics")
        from agora.core.observability import serve_metrics

        serve_metrics(metrics_port)
    from agora.worker import app as celery

    celery.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--hostname={name}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )


@app.command()
def beat() -> None:
    """Run Celery beat, which sends the periodic tasks (sweeps, reconciliation)."""
    _export_service_urls()
    from agora.worker import app as celery

    celery.start(["beat", "--loglevel=INFO"])


@logs_app.command("worker")
def logs_worker() -> None:
    """Load buffered log lines into PostgreSQL (run as many as the ingest rate needs)."""
    import asyncio

    from agora.core.observability import configure_logging
    from agora.logs.loader import serve

    urls = _export_service_urls()
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.wants_json_logs)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(urls.database_url, urls.redis_url, settings, stop)

    asyncio.run(main())


@logs_app.command("ship")
def logs_ship(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="The log file to send.")],
    format_: Annotated[
        str, typer.Option("--format", help="nginx (combined), json (nginx escape=json), ndjson.")
    ] = "nginx",
    follow: Annotated[bool, typer.Option("--follow", help="Keep following the file.")] = False,
    url: Annotated[str, typer.Option(help="Agora's base URL.")] = "http://127.0.0.1:8000",
    key: Annotated[str, typer.Option(help="An ingest key (or a staff access token).")] = "",
    state: Annotated[
        Path | None, typer.Option(help="Where to keep the offset (default: the data folder).")
    ] = None,
) -> None:
    """Send a log file to the ingest API, surviving rotation and truncation."""
    from agora.logs.shipper import Position, Progress, Shipper, ShipRefused, default_state_path

    if format_ not in ("nginx", "json", "ndjson"):
        console.print("[red]--format is nginx, json or ndjson[/red]")
        raise typer.Exit(2)
    if not key:
        console.print("[red]--key is required (create one with POST /api/v1/logs/keys)[/red]")
        raise typer.Exit(2)
    state_path = state or default_state_path(get_settings().data_dir, file)

    def show(progress: Progress, position: Position) -> None:
        console.print(
            f"shipped {progress.sent} lines ({progress.rejected} rejected, "
            f"{progress.retries} retries) — offset {position.offset}",
            end="\r",
            highlight=False,
        )

    shipper = Shipper(file, state_path, url, key, format_, on_progress=show)  # type: ignore[arg-type]
    stopping = False

    def request_stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        done = shipper.run(follow=follow, stop=lambda: stopping)
    except ShipRefused as refusal:
        console.print(f"\n[red]{refusal}[/red]")
        raise typer.Exit(1) from refusal
    console.print(f"\nshipped {done.sent} lines, {done.rejected} rejected")


@app.command()
def crawl(
    concurrency: Annotated[
        int | None, typer.Option(help="Fetches in flight at most (AGORA_CRAWLER_CONCURRENCY).")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve the crawler's Prometheus metrics on this port.")
    ] = None,
) -> None:
    """Run a crawler process (price watch); run as many as you like on any machines."""
    import uvloop

    _export_service_urls()
    from agora.core.observability import configure_logging, serve_metrics
    from agora.pricewatch.crawl import run

    if metrics_port is not None:
        serve_metrics(metrics_port)

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.wants_json_logs)
    uvloop.run(run(settings, concurrency or settings.crawler_concurrency))


@app.command()
def grpc(
    host: HostOption = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="TCP port to listen on (AGORA_GRPC_PORT, 50051).")
    ] = None,
) -> None:
    """Serve the gRPC inventory service (agora.inventory.v1) with health and reflection."""
    import asyncio

    from agora.rpc.server import serve

    urls = _export_service_urls()
    settings = get_settings()
    listen_port = settings.grpc_port if port is None else port
    console.print(f"gRPC inventory service on {host}:{listen_port}")
    asyncio.run(serve(settings, urls.database_url, urls.redis_url, f"{host}:{listen_port}"))


@app.command("check-worker")
def check_worker(timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 10.0) -> None:
    """Publish a ping after a committed transaction and wait until a worker records it."""
    import asyncio

    urls = _export_service_urls()
    from agora.core.db import Database
    from agora.core.jobs import defer
    from agora.core.redis import create_redis
    from agora.worker import PING_KEY_PREFIX  # also configures Celery from the environment

    async def round_trip() -> bool:
        token = uuid.uuid4().hex
        database, redis = (
            Database(urls.database_url, pool_size=2),
            create_redis(urls.redis_url, get_settings()),
        )
        try:
            async with database.unit_of_work() as session:
                defer(session, "agora.ping", token)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if await redis.get(PING_KEY_PREFIX + token):
                    return True
                await asyncio.sleep(0.1)
            return False
        finally:
            await redis.aclose()
            await database.dispose()

    if not asyncio.run(round_trip()):
        console.print("[red]no worker answered[/red]")
        raise typer.Exit(1)
    console.print("[green]a worker answered[/green]")


@app.command()
def demo() -> None:
    """Load the demo catalog, with stock (idempotent: what exists already is kept)."""
    created = _load_demo(only_if_empty=False)
    console.print(f"[green]demo catalog ready[/green] ({created} products created)")


def _load_demo(*, only_if_empty: bool) -> int:
    import asyncio

    from rich.progress import Progress

    from agora.catalog.demo import CATEGORIES, PRODUCTS_PER_CATEGORY, load_demo
    from agora.core.db import Database
    from agora.core.redis import create_redis
    from agora.inventory.service import stock_unstocked_variants

    urls = _export_service_urls()

    async def run(progress: Progress) -> int:
        task = progress.add_task("demo catalog", total=len(CATEGORIES) * PRODUCTS_PER_CATEGORY)
        database, redis = (
            Database(urls.database_url, pool_size=2),
            create_redis(urls.redis_url, get_settings()),
        )
        try:
            created = await load_demo(
                database,
                redis,
                only_if_empty=only_if_empty,
                on_product=lambda: progress.advance(task),
            )
            async with database.unit_of_work() as session:
                await stock_unstocked_variants(session, DEMO_STOCK_PER_VARIANT, redis=redis)
            return created
        finally:
            await redis.aclose()
            await database.dispose()

    with Progress(console=console, transient=True) as progress:
        return asyncio.run(run(progress))


@import_app.command("products")
def import_products(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file.")],
) -> None:
    """Import products from CSV (one variant per row); rejected rows are listed with reasons."""
    import asyncio

    from rich.progress import Progress
    from rich.table import Table

    from agora.catalog.importer import ImportReport, import_rows, read_rows
    from agora.core.db import Database
    from agora.core.redis import create_redis

    urls = _export_service_urls()
    try:
        rows = read_rows(file)
    except (ValueError, UnicodeDecodeError) as exc:
        console.print(f"[red]cannot read {file}: {exc}[/red]")
        raise typer.Exit(2) from exc

    async def run(progress: Progress) -> ImportReport:
        task = progress.add_task(f"importing {file.name}", total=len(rows))
        database, redis = (
            Database(urls.database_url, pool_size=2),
            create_redis(urls.redis_url, get_settings()),
        )
        try:
            async with database.unit_of_work() as session:
                return await import_rows(session, redis, rows, lambda: progress.advance(task))
        finally:
            await redis.aclose()
            await database.dispose()

    with Progress(console=console) as progress:
        report = asyncio.run(run(progress))
    console.print(
        f"[green]{report.imported} rows imported[/green], {len(report.rejected)} rejected"
    )
    if report.rejected:
        table = Table("line", "reason", title="Rejected rows")
        for rejected in report.rejected:
            table.add_row(str(rejected.line), rejected.reason)
        console.print(table)
        raise typer.Exit(1)


@app.command()
def up(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    workers: WorkersOption = 1,
    no_demo: Annotated[bool, typer.Option("--no-demo", help="Skip the demo catalog.")] = False,
) -> None:
    """Run everything in one terminal: services, migrations, demo data, API, worker, beat, a
    crawler and a log loader."""
    settings = get_settings()
    started_postgres = (
        settings.database_url is None and not EmbeddedPostgres(settings.data_dir).is_running()
    )
    started_redis = settings.redis_url is None and not EmbeddedRedis(settings.data_dir).is_running()
    migrate()
    if not no_demo:
        _load_demo(only_if_empty=True)
    _prepare_metrics_dir()
    agora = [sys.executable, "-m", "agora"]
    commands = [
        [*agora, "api", "--host", host, "--port", str(port), "--workers", str(workers)],
        [*agora, "worker"],
        [*agora, "beat"],
        [*agora, "logs", "worker"],
        [*agora, "crawl"],
    ]
    children = [subprocess.Popen(command) for command in commands]  # noqa: S603 - our own CLI
    console.print(
        f"[bold green]Agora is up[/bold green]: API http://{host}:{port}/api/v1  "
        f"docs http://{host}:{port}/docs  metrics http://{host}:{port}/metrics  (Ctrl-C stops)"
    )
    try:
        _supervise(children)
    finally:
        _stop_children(children)
        if started_postgres:
            EmbeddedPostgres(settings.data_dir).stop()
        if started_redis:
            EmbeddedRedis(settings.data_dir).stop()
        console.print("Agora stopped")


def _supervise(children: list[subprocess.Popen[bytes]]) -> None:
    """Wait until a signal arrives or a child exits."""
    stopping = False

    def request_stop(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping:
        exited = [child for child in children if child.poll() is not None]
        if exited:
            console.print(f"[red]a child exited ({exited[0].args!r}); stopping[/red]")
            return
        time.sleep(0.2)


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE_S
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Argument(help="The account's email (its login).")],
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="Its password."),
    ],
    role: Annotated[str, typer.Option(help="customer, staff or admin.")] = "customer",
) -> None:
    """Create an account, typically the first admin or a member of staff."""
    import asyncio

    from agora.accounts import service
    from agora.accounts.schemas import RegisterRequest
    from agora.core.db import Database
    from agora.core.errors import Conflict
    from agora.core.security import Role

    try:
        account = RegisterRequest(email=email, password=password)
        account_role = TypeAdapter(Role).validate_python(role)
    except ValidationError as exc:
        console.print(f"[red]{_first_error(exc)}[/red]")
        raise typer.Exit(2) from exc
    urls = _export_service_urls()

    async def create() -> uuid.UUID:
        database = Database(urls.database_url, pool_size=2)
        try:
            async with database.unit_of_work() as session:
                user = await service.register(
                    session, email=account.email, password=account.password, role=account_role
                )
                return user.id
        finally:
            await database.dispose()

    try:
        user_id = asyncio.run(create())
    except Conflict as exc:
        console.print(f"[red]{exc.detail}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"[green]created {account_role.value} {account.email}[/green]")
    typer.echo(user_id)


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "value"
    return f"{location}: {first['msg']}"


@services_app.command("start")
def services_start() -> None:
    """Start the embedded PostgreSQL and Redis (or reuse them) and print their URLs."""
    urls = _export_service_urls()
    _print_urls(urls.database_url, urls.redis_url)


@services_app.command("stop")
def services_stop() -> None:
    """Stop the embedded PostgreSQL and Redis."""
    data_dir = get_settings().data_dir
    EmbeddedPostgres(data_dir).stop()
    EmbeddedRedis(data_dir).stop()
    console.print("embedded services stopped")


@services_app.command("status")
def services_status() -> None:
    """Print whether the embedded services run, with their URLs."""
    data_dir = get_settings().data_dir
    postgres_url, redis_url = EmbeddedPostgres(data_dir).url(), EmbeddedRedis(data_dir).url()
    _print_urls(postgres_url, redis_url)
    if postgres_url is None or redis_url is None:
        raise typer.Exit(1)


def _print_urls(database_url: str | None, redis_url: str | None) -> None:
    typer.echo(f"AGORA_DATABASE_URL={database_url or '(stopped)'}")
    typer.echo(f"AGORA_REDIS_URL={redis_url or '(stopped)'}")
