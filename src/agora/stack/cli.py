"""``agora stack up|down``: the production shape on this machine, behind a real nginx.

Unlike ``agora up`` (embedded services, one of each process), the stack runs on external
PostgreSQL, Redis and a broker named by URL, with several API processes behind nginx, several
workers, beat, and optionally Prometheus scraping them — each process restarted if it dies.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Annotated

import asyncpg
import httpx
import typer
from rich.console import Console
from sqlalchemy.engine import make_url

from agora.settings import get_settings
from agora.stack.plan import StackPlan
from agora.stack.supervisor import Supervisor, stop_stack

stack_app = typer.Typer(help="Several processes on external services behind nginx.")
console = Console(stderr=True)
_READY_TIMEOUT_S = 90.0


API_BASE_PORT = 8101
WORKER_METRICS_BASE_PORT = 9811


RunDirOption = Annotated[
    Path | None, typer.Option(help="Folder for configs, logs and state (default: DATA_DIR/stack).")
]


@stack_app.command("up")
def stack_up(
    api_processes: Annotated[int, typer.Option(help="API processes behind nginx.")] = 2,
    workers: Annotated[int, typer.Option(help="Celery worker processes.")] = 2,
    prometheus_port: Annotated[
        int, typer.Option(help="Run Prometheus on this port scraping every process (0: none).")
    ] = 0,
    api_base_port: Annotated[
        int, typer.Option(help="Port of the first API process; the others follow.")
    ] = API_BASE_PORT,
    worker_metrics_port: Annotated[
        int, typer.Option(help="Metrics port of the first worker; the others follow.")
    ] = WORKER_METRICS_BASE_PORT,
    no_demo: Annotated[bool, typer.Option("--no-demo", help="Skip the demo catalog.")] = False,
    run_dir: RunDirOption = None,
    deploy_dir: Annotated[Path, typer.Option(help="The deploy/ folder.")] = Path("deploy"),
) -> None:
    """Run the stack in the foreground; Ctrl-C or SIGTERM stops every process."""
    from agora.cli import _load_demo, migrate

    settings = get_settings()
    missing = [
        name
        for name, value in (
            ("AGORA_DATABASE_URL", settings.database_url),
            ("AGORA_REDIS_URL", settings.redis_url),
            ("AGORA_BROKER_URL", settings.broker_url),
        )
        if not value
    ]
    for name in missing:
        console.print(f"[red]{name} must name an external service for the stack[/red]")
    if shutil.which("nginx") is None:
        console.print("[red]nginx is not installed (Debian: apt-get install nginx)[/red]")
    if missing or shutil.which("nginx") is None:
        raise typer.Exit(2)
    assert settings.database_url is not None
    asyncio.run(ensure_database(settings.database_url))
    migrate()
    if not no_demo:
        _load_demo(only_if_empty=True)
    plan = StackPlan(
        deploy_dir=deploy_dir.resolve(),
        run_dir=(run_dir or settings.data_dir / "stack").resolve(),
        proxy_port=settings.proxy_port,
        api_ports=tuple(api_base_port + index for index in range(api_processes)),
        worker_metrics_ports=tuple(worker_metrics_port + index for index in range(workers)),
        prometheus_port=prometheus_port or None,
    )
    plan.write_configs()
    supervisor = Supervisor(plan.programs(), plan.state_file, log=console.print)
    supervisor.run(on_started=lambda: _announce(plan))


@stack_app.command("down")
def stack_down(run_dir: RunDirOption = None) -> None:
    """Stop a stack started by ``agora stack up`` in another terminal."""
    folder = (run_dir or get_settings().data_dir / "stack").resolve()
    if stop_stack(folder / "stack.json"):
        console.print("stack stopped")
    else:
        console.print("no stack was running")


async def ensure_database(url: str) -> None:
    """Create the database named by ``url`` on its server when it does not exist yet."""
    target = make_url(url)
    name = target.database or "agora"
    if not name.replace("_", "").isalnum():
        raise typer.BadParameter(f"invalid database name: {name!r}")
    dsn = target.set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            # The name is checked above; CREATE DATABASE takes no bind parameters.
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def _announce(plan: StackPlan) -> None:
    base_url = f"http://127.0.0.1:{plan.proxy_port}"
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                console.print(
                    f"[bold green]stack is up[/bold green]: {base_url}/api/v1 through nginx, "
                    f"{len(plan.api_ports)} API processes (Ctrl-C or `agora stack down` stops)"
                )
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    console.print("[yellow]the stack did not answer /readyz through nginx in time[/yellow]")
