"""The production shape on one machine: which processes run, and the proxy and scrape configs.

The configs are rendered from the files in ``deploy/`` that the container deployment uses, so
the nginx and Prometheus set-up that is tested here is the one that ships: only the addresses
change (replicas on local ports instead of Docker's DNS names, files under the run folder).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agora.stack.supervisor import Program

_UPSTREAM = re.compile(r"(upstream agora_api \{\n)(.*?)(\n\s*keepalive )", re.DOTALL)
_RESOLVER = re.compile(r"^\s*resolver [^;]*;\n", re.MULTILINE)
_LISTEN = re.compile(r"listen 80 default_server;")
_STDIO_LOGS = re.compile(r"(error_log|access_log) /dev/std(?:err|out)")
_MIME_TYPES = "include /etc/nginx/mime.types;"
_SCRAPED_JOBS = {"agora-api": "api", "agora-worker": "worker"}


@dataclass(frozen=True)
class StackPlan:
    """Ports and counts of one local production stack."""

    deploy_dir: Path
    run_dir: Path
    proxy_port: int = 8080
    api_ports: tuple[int, ...] = (8101, 8102)
    worker_metrics_ports: tuple[int, ...] = (9811, 9812)
    worker_concurrency: int = 1
    prometheus_port: int | None = None

    @property
    def nginx_config(self) -> Path:
        """Where the rendered nginx configuration is written."""
        return self.run_dir / "nginx" / "nginx.conf"

    @property
    def prometheus_config(self) -> Path:
        """Where the rendered Prometheus configuration is written."""
        return self.run_dir / "prometheus" / "prometheus.yml"

    @property
    def state_file(self) -> Path:
        """The supervisor's state file, read by ``agora stack down``."""
        return self.run_dir / "stack.json"

    def programs(self) -> list[Program]:
        """Every process of the stack; the proxy last, so it is stopped first."""
        agora = [sys.executable, "-m", "agora"]
        programs = [
            Program(
                f"api-{index}",
                [*agora, "api", "--host", "127.0.0.1", "--port", str(port)],
                {
                    "PROMETHEUS_MULTIPROC_DIR": str(self._metrics_dir(f"api-{index}")),
                    # nginx, on this machine, names the client; nobody else may.
                    "AGORA_TRUSTED_PROXIES": "127.0.0.1",
                },
            )
            for index, port in enumerate(self.api_ports, start=1)
        ]
        programs += [
            Program(
                f"worker-{index}",
                [
                    *agora,
                    "worker",
                    "--concurrency",
                    str(self.worker_concurrency),
                    "--metrics-port",
                    str(port),
                    "--name",
                    f"worker-{index}",
                ],
                {"PROMETHEUS_MULTIPROC_DIR": str(self._metrics_dir(f"worker-{index}"))},
            )
            for index, port in enumerate(self.worker_metrics_ports, start=1)
        ]
        programs.append(Program("beat", [*agora, "beat"]))
        programs.append(Program("logs-worker", [*agora, "logs", "worker"]))
        programs.append(Program("crawler", [*agora, "crawl"]))
        if self.prometheus_port is not None:
            programs.append(Program("prometheus", self._prometheus_argv()))
        programs.append(
            Program(
                "nginx",
                [
                    "nginx",
                    "-p",
                    str(self.nginx_config.parent),
                    "-c",
                    str(self.nginx_config),
                    "-g",
                    "daemon off;",
                ],
            )
        )
        return programs

    def write_configs(self) -> None:
        """Render the nginx and Prometheus configs, and make each process's metrics folder."""
        for name in [f"api-{i}" for i in range(1, len(self.api_ports) + 1)] + [
            f"worker-{i}" for i in range(1, len(self.worker_metrics_ports) + 1)
        ]:
            folder = self._metrics_dir(name)
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob("*.db"):
                stale.unlink()
        self.nginx_config.parent.mkdir(parents=True, exist_ok=True)
        (self.nginx_config.parent / "logs").mkdir(exist_ok=True)
        self.nginx_config.write_text(
            render_nginx((self.deploy_dir / "nginx.conf").read_text(), self)
        )
        self.prometheus_config.parent.mkdir(parents=True, exist_ok=True)
        self.prometheus_config.write_text(
            render_prometheus((self.deploy_dir / "prometheus" / "prometheus.yml").read_text(), self)
        )

    def _metrics_dir(self, name: str) -> Path:
        return self.run_dir / "metrics" / name

    def _prometheus_argv(self) -> list[str]:
        return [
            "prometheus",
            f"--config.file={self.prometheus_config}",
            f"--storage.tsdb.path={self.prometheus_config.parent / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
        ]


def render_nginx(template: str, plan: StackPlan) -> str:
    """deploy/nginx.conf with local replicas, a local listen address and files in the run folder."""
    servers = "".join(
        f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;\n" for port in plan.api_ports
    )
    rendered = _substitute(
        _UPSTREAM,
        lambda m: m[1] + "        zone agora_api 64k;\n" + servers.rstrip("\n") + m[3],
        template,
    )
    rendered = _substitute(_RESOLVER, lambda _: "", rendered)
    rendered = _substitute(_LISTEN, lambda _: f"listen 127.0.0.1:{plan.proxy_port};", rendered)
    logs = plan.nginx_config.parent / "logs"
    rendered = _STDIO_LOGS.sub(
        lambda m: f"{m[1]} {logs / ('error.log' if m[1] == 'error_log' else 'access.log')}",
        rendered,
    )
    header = f"pid {plan.nginx_config.parent / 'nginx.pid'};\n"
    if _MIME_TYPES not in rendered:
        raise ValueError("deploy/nginx.conf no longer includes the mime types")
    return header + rendered


def render_prometheus(template: str, plan: StackPlan) -> str:
    """deploy/prometheus/prometheus.yml with static local targets instead of Docker DNS."""
    config: dict[str, Any] = yaml.safe_load(template)
    ports = {"api": plan.api_ports, "worker": plan.worker_metrics_ports}
    config["rule_files"] = [str(plan.deploy_dir / "prometheus" / "alerts.yml")]
    config["global"]["scrape_interval"] = "2s"
    config["global"]["evaluation_interval"] = "2s"
    for job in config["scrape_configs"]:
        kind = _SCRAPED_JOBS.get(job["job_name"])
        if kind is not None:
            job.pop("dns_sd_configs")
            job["static_configs"] = [{"targets": [f"127.0.0.1:{p}" for p in ports[kind]]}]
        elif job["job_name"] == "prometheus":
            job["static_configs"] = [{"targets": [f"127.0.0.1:{plan.prometheus_port}"]}]
    return yaml.safe_dump(config, sort_keys=False)


def _substitute(pattern: re.Pattern[str], replace: Any, text: str) -> str:
    rendered, count = pattern.subn(replace, text, count=1)
    if count != 1:
        raise ValueError(f"deploy/nginx.conf no longer matches {pattern.pattern!r}")
    return rendered
