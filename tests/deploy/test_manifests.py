"""Static checks of deploy/: every file parses and agrees with the code it deploys.

No container engine or cluster runs here, so each file is read and checked against the real
command line, settings and metrics of Agora: a renamed command, an unknown ``AGORA_*``
variable, a dangling service reference or an alert on a metric nobody exports fails the build.
"""

from __future__ import annotations

import fnmatch
import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydantic
import pytest
import yaml

from agora.settings import Settings, configuration_problems
from tests.deploy.support import (
    AGORA_VARIABLE,
    DEPLOY,
    NginxBlock,
    check_cli_arguments,
    dockerfile_instructions,
    exported_metric_names,
    load_yaml_documents,
    metric_names_in,
    read_nginx,
    settings_from_environment,
    settings_variables,
)
from tests.support import ROOT

COMPOSE_ENVIRONMENT = {
    "AGORA_SECRET_KEY": "a-test-secret-key-of-more-than-thirty-two-characters",
    "POSTGRES_PASSWORD": "postgres-password",
    "RABBITMQ_PASSWORD": "rabbitmq-password",
    "GRAFANA_ADMIN_PASSWORD": "grafana-password",
}
AGORA_COMMANDS = {"migrate", "api", "worker", "beat", "crawl", "logs"}
BUILTIN_METRICS = {"up"}
K8S = DEPLOY / "k8s"
NAMESPACE = "agora"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a container listens on every interface
METRICS_DIR = "/tmp/agora-metrics"  # noqa: S108 - the image's PROMETHEUS_MULTIPROC_DIR


_VARIABLE_REFERENCE = re.compile(r"\$\{(?P<name>\w+)(?::[-?](?P<fallback>[^}]*))?\}")


@cache
def compose() -> dict[str, Any]:
    """deploy/compose.yaml as YAML, its ``${NAME…}`` references as written."""
    parsed: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return parsed


def filled(value: str) -> str:
    """A compose value with each variable reference replaced by the test environment's value."""
    return _VARIABLE_REFERENCE.sub(
        lambda m: COMPOSE_ENVIRONMENT.get(m["name"], m["fallback"] or ""), value
    )


def services() -> dict[str, dict[str, Any]]:
    """The services of the compose file."""
    return dict(compose()["services"])


def agora_services() -> dict[str, dict[str, Any]]:
    """The compose services that run the Agora image."""
    return {
        name: service
        for name, service in services().items()
        if _repository(service["image"]) == "agora"
    }


def is_one_shot(service: dict[str, Any]) -> bool:
    """A service that runs to completion instead of staying up."""
    return service.get("restart") == "no"


def option_value(arguments: list[str], option: str) -> str:
    """The value following ``option`` in a command line."""
    return arguments[arguments.index(option) + 1]


@cache
def k8s_objects() -> list[dict[str, Any]]:
    """Every Kubernetes object under deploy/k8s."""
    return [
        document for path in sorted(K8S.glob("*.yaml")) for document in load_yaml_documents(path)
    ]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    """The one object of ``kind`` called ``name``."""
    found = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_templates() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(owner, pod template) for every Deployment and Job."""
    return [(o, o["spec"]["template"]) for o in k8s_objects() if o["kind"] in {"Deployment", "Job"}]


def only_container(owner: dict[str, Any]) -> dict[str, Any]:
    """The single container of a Deployment or Job."""
    containers = owner["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


@cache
def nginx() -> NginxBlock:
    """deploy/nginx.conf, as crossplane reads it."""
    return read_nginx(DEPLOY / "nginx.conf")


def _repository(image: str) -> str:
    return image.rsplit("/", 1)[-1].split(":", 1)[0]


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", size).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


# Every file


def test_every_yaml_and_json_file_parses() -> None:
    yaml_files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert len(yaml_files) >= 10
    for path in yaml_files:
        assert load_yaml_documents(path), f"{path} is empty"
    json_files = sorted(DEPLOY.rglob("*.json"))
    assert json_files
    for path in json_files:
        assert json.loads(path.read_text()), f"{path} is empty"


def test_every_agora_variable_is_a_setting() -> None:
    known = settings_variables()
    used: dict[str, set[str]] = {}
    for path in [*DEPLOY.rglob("*"), ROOT / ".dockerignore"]:
        if path.is_file():
            for variable in AGORA_VARIABLE.findall(path.read_text()):
                used.setdefault(variable, set()).add(str(path.relative_to(ROOT)))
    unknown = {variable: files for variable, files in used.items() if variable not in known}
    assert not unknown, f"not fields of Settings: {unknown}"
    assert {"AGORA_ENV", "AGORA_SECRET_KEY", "AGORA_DATABASE_URL", "AGORA_BROKER_URL"} <= set(used)


# Dockerfile


def test_dockerfile_builds_a_wheel_then_installs_it_on_slim_python() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = dockerfile_instructions(DEPLOY / "Dockerfile")
    stages = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    assert len(stages) == 2
    assert stages[0].endswith(" AS build")
    base = next(a for k, a in instructions if k == "ARG" and a.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.12-slim(-\w+)?", base)
    assert all(stage.startswith("${PYTHON_IMAGE}") for stage in stages)
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    build_stage = instructions[starts[0] : starts[1]]
    assert any(k == "RUN" and "pip wheel" in a for k, a in build_stage)
    runtime = runtime_stage()
    install = next(a for k, a in runtime if k == "RUN" and "pip install" in a)
    assert "from=build" in install
    assert "--no-index" in install
    assert "[dev]" not in text


def runtime_stage() -> list[tuple[str, str]]:
    """The instructions of the Dockerfile's last stage."""
    instructions = dockerfile_instructions(DEPLOY / "Dockerfile")
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_dockerfile_runs_agora_as_an_unprivileged_user() -> None:
    runtime = runtime_stage()
    keywords = [keyword for keyword, _ in runtime]
    user = [arguments for keyword, arguments in runtime if keyword == "USER"]
    assert user
    assert user[-1].split(":")[0] not in {"root", "0"}
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    entrypoint = json.loads(next(a for k, a in runtime if k == "ENTRYPOINT"))
    assert entrypoint == ["agora"]
    command = json.loads(next(a for k, a in runtime if k == "CMD"))
    assert command == ["api", "--host", ALL_INTERFACES, "--workers", "2"]
    check_cli_arguments(command)


def test_dockerfile_health_check_and_metrics_folder() -> None:
    runtime = runtime_stage()
    healthcheck = next(a for k, a in runtime if k == "HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert "python" in healthcheck
    assert "curl" not in healthcheck
    environment = " ".join(a for k, a in runtime if k == "ENV")
    metrics_dir = re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", environment)
    assert metrics_dir
    assert metrics_dir[1] == METRICS_DIR
    created = [a for k, a in runtime if k == "RUN" and metrics_dir[1] in a]
    assert created
    assert "-o agora" in created[0], "the metrics folder must belong to the runtime user"


def test_dockerignore_keeps_out_local_state_but_not_build_inputs() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) for pattern in patterns)

    for needed in ("pyproject.toml", "README.md", "src"):
        assert not ignored(needed), needed
    for local in (".git", ".venv", ".agora", ".agora-test", ".env"):
        assert ignored(local), local
    copied = [a for k, a in dockerfile_instructions(DEPLOY / "Dockerfile")]
    assert any("pyproject.toml" in arguments for arguments in copied)


# docker compose


def test_compose_demands_the_secret_key_and_passwords() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    assert "AGORA_SECRET_KEY: ${AGORA_SECRET_KEY:?" in text
    for required in COMPOSE_ENVIRONMENT:
        assert "${" + required + ":?" in text, f"{required} is not demanded"
        assert "${" + required + ":-" not in text, f"{required} has a default"


def test_compose_services_reference_only_defined_services() -> None:
    defined = services()
    volumes = set(compose().get("volumes") or {})
    for name, service in defined.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in defined, f"{name} depends on unknown {dependency}"
            expected = condition["condition"]
            target = defined[dependency]
            if expected == "service_healthy":
                assert "test" in target.get("healthcheck", {}), f"{dependency} has no healthcheck"
            else:
                assert expected == "service_completed_successfully", f"{name}: {expected}"
                assert is_one_shot(target), f"{name} waits for {dependency} to complete"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} mounts undeclared volume {source}"


def test_compose_services_are_health_checked_or_one_shot() -> None:
    for name, service in services().items():
        healthcheck = service.get("healthcheck", {})
        if is_one_shot(service):
            continue
        assert healthcheck.get("test"), name
        assert not healthcheck.get("disable"), name


def test_compose_runs_every_process_kind_with_real_commands() -> None:
    agora = agora_services()
    commands = {name: service["command"] for name, service in agora.items()}
    for command in commands.values():
        check_cli_arguments(command)
    assert {command[0] for command in commands.values()} == AGORA_COMMANDS
    by_command = {command[0]: agora[name] for name, command in commands.items()}
    assert is_one_shot(by_command["migrate"])
    assert by_command["api"]["deploy"]["replicas"] == 2
    assert by_command["beat"]["deploy"]["replicas"] == 1
    for kind in ("api", "worker", "beat"):
        assert by_command[kind]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert "--host" in by_command["api"]["command"]
    assert option_value(by_command["api"]["command"], "--host") == ALL_INTERFACES


def test_compose_configuration_is_valid_for_production() -> None:
    defined = services()
    for name, service in agora_services().items():
        environment = {key: filled(str(value)) for key, value in service["environment"].items()}
        settings = settings_from_environment(environment)
        assert settings.is_production, name
        assert settings.secret_key.get_secret_value() == COMPOSE_ENVIRONMENT["AGORA_SECRET_KEY"]
        assert (settings.database_url or "").startswith("postgresql+asyncpg://"), name
        assert (settings.broker_url or "").startswith("amqp://"), name
        assert (settings.redis_url or "").startswith("redis://"), name
        for url in (settings.database_url, settings.broker_url, settings.redis_url):
            assert urlsplit(url).hostname in defined, f"{name}: {url} names no service"


def test_compose_images_are_pinned_and_redis_keeps_an_append_only_file() -> None:
    images = {name: service["image"] for name, service in services().items()}
    assert images["postgres"] == "postgres:16"
    assert images["redis"] == "redis:7"
    assert images["rabbitmq"] == "rabbitmq:3-management"
    for name, image in images.items():
        if name not in agora_services():
            assert ":" in image, f"{name}: {image}"
            assert not image.endswith(":latest"), f"{name}: {image}"
    command = services()["redis"]["command"]
    assert option_value(command, "--appendonly") == "yes"
    assert {"nginx", "prometheus", "grafana"} <= set(images)


# nginx


def test_nginx_proxies_to_the_api_replicas_with_keepalive() -> None:
    http = nginx().find("http")[0]
    upstreams = {block.arguments[0]: block for block in http.find("upstream")}
    assert upstreams
    api_port = option_value(agora_services()["api"]["command"], "--port")
    for upstream in upstreams.values():
        (keepalive,) = upstream.values("keepalive")
        assert len(keepalive) == 1, f"keepalive {keepalive}"
        assert keepalive[0].isdigit(), f"keepalive {keepalive}"
        for server in upstream.values("server"):
            host, port = server[0].split(":")
            assert host in services(), f"upstream server {host} is no compose service"
            assert port == api_port
    server = http.find("server")[0]
    assert server.values("proxy_http_version") == [["1.1"]]
    for location in server.find("location"):
        for proxy_pass in location.values("proxy_pass"):
            assert urlsplit(proxy_pass[0]).hostname in upstreams
        assert not location.find("proxy_set_header"), (
            f"location {location.arguments}: its own proxy_set_header drops the server's headers"
        )


def test_nginx_forwards_client_headers_and_upgrades_websockets() -> None:
    http = nginx().find("http")[0]
    server = http.find("server")[0]
    headers = dict(server.values("proxy_set_header"))
    # Overwritten with the peer (or the real_ip module's client), never appended to.
    assert headers["X-Forwarded-For"] == "$remote_addr"
    assert http.values("real_ip_header") == [["X-Forwarded-For"]]
    assert headers["X-Forwarded-Proto"] == "$scheme"
    assert headers["Upgrade"] == "$http_upgrade"
    assert headers["Connection"] == "$connection_upgrade"
    upgrade_map = next(m for m in http.find("map") if m.arguments[1] == "$connection_upgrade")
    assert upgrade_map.values("default") == [["upgrade"]]
    websocket = next(loc for loc in server.find("location") if loc.arguments[-1] == "/ws")
    assert websocket.values("proxy_buffering") == [["off"]]
    assert websocket.values("proxy_pass")
    hidden = next(loc for loc in server.find("location") if loc.arguments[-1] == "/metrics")
    assert hidden.values("return") == [["404"]]


def test_only_nginx_is_a_trusted_proxy() -> None:
    everything = "\n".join(path.read_text() for path in DEPLOY.rglob("*") if path.is_file())
    assert "FORWARDED_ALLOW_IPS" not in everything
    api = agora_services()["api"]
    nginx_address = services()["nginx"]["networks"]["default"]["ipv4_address"]
    environment = {key: filled(str(value)) for key, value in api["environment"].items()}
    assert settings_from_environment(environment).trusted_proxy_list == [f"{nginx_address}/32"]
    for name, service in agora_services().items():
        if name != "api":
            assert "AGORA_TRUSTED_PROXIES" not in service["environment"]


def test_nginx_body_limit_matches_settings_and_json_is_gzipped() -> None:
    http = nginx().find("http")[0]
    (limit,) = http.values("client_max_body_size")
    default = Settings.model_fields["max_body_size"].default
    assert _bytes(limit[0]) == default
    for service in agora_services().values():
        assert int(service["environment"]["AGORA_MAX_BODY_SIZE"]) == default
    assert http.values("gzip") == [["on"]]
    assert "application/json" in http.values("gzip_types")[0]


# Kubernetes


def test_k8s_objects_are_complete_and_namespaced() -> None:
    kinds = {o["kind"] for o in k8s_objects()}
    assert {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Job",
        "Service",
        "Ingress",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    } <= kinds
    for manifest in k8s_objects():
        assert manifest.get("apiVersion"), manifest
        assert manifest.get("kind"), manifest
        assert manifest.get("metadata", {}).get("name"), manifest
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"].get("namespace") == NAMESPACE, manifest["metadata"]
    assert k8s_object("Namespace", NAMESPACE)


def test_k8s_containers_run_real_commands_with_defined_configuration() -> None:
    images = set()
    seen = set()
    for owner, template in pod_templates():
        labels = template["metadata"]["labels"]
        if owner["kind"] == "Deployment":
            selector = owner["spec"]["selector"]["matchLabels"]
            assert selector.items() <= labels.items(), owner["metadata"]["name"]
        for container in template["spec"]["containers"]:
            assert _repository(container["image"]) == "agora", container["image"]
            assert "command" not in container, "the image's ENTRYPOINT is agora: use args"
            check_cli_arguments(container["args"])
            seen.add(container["args"][0])
            images.add(container["image"])
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    k8s_object("ConfigMap", source["configMapRef"]["name"])
                if "secretRef" in source:
                    k8s_object("Secret", source["secretRef"]["name"])
    assert seen == AGORA_COMMANDS
    assert len(images) == 1, f"every process kind runs the same image: {images}"


def test_k8s_api_deployment_has_probes_resources_and_three_replicas() -> None:
    deployment = k8s_object("Deployment", "agora-api")
    assert deployment["spec"]["replicas"] == 3
    container = only_container(deployment)
    port_names = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert port_names["http"] == int(option_value(container["args"], "--port"))
    assert option_value(container["args"], "--host") == ALL_INTERFACES
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in port_names
    resources = container["resources"]
    assert resources["requests"]["cpu"]
    assert resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert METRICS_DIR in mounts, "PROMETHEUS_MULTIPROC_DIR must be writable"


def test_k8s_api_has_a_disruption_budget_autoscaler_and_service() -> None:
    deployment = k8s_object("Deployment", "agora-api")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    budget = k8s_object("PodDisruptionBudget", "agora-api")
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    autoscaler = k8s_object("HorizontalPodAutoscaler", "agora-api")
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "agora-api",
    }
    assert autoscaler["spec"]["minReplicas"] == deployment["spec"]["replicas"]
    (metric,) = autoscaler["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    service = k8s_object("Service", "agora-api")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port_names = {port["name"] for port in only_container(deployment)["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in port_names


def test_k8s_beat_runs_alone_and_migrate_runs_once() -> None:
    beat = k8s_object("Deployment", "agora-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert only_container(beat)["args"] == ["beat"]
    job = k8s_object("Job", "agora-migrate")
    assert only_container(job)["args"] == ["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}
    worker = k8s_object("Deployment", "agora-worker")
    assert only_container(worker)["args"][0] == "worker"
    assert only_container(worker)["livenessProbe"]


def test_k8s_ingress_routes_to_the_api_service_and_carries_websockets() -> None:
    service = k8s_object("Service", "agora-api")
    port_names = {port["name"] for port in service["spec"]["ports"]}
    ingresses = [o for o in k8s_objects() if o["kind"] == "Ingress"]
    paths = {}
    for ingress in ingresses:
        annotations = ingress["metadata"]["annotations"]
        body_limit = annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
        assert _bytes(body_limit) == Settings.model_fields["max_body_size"].default
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] == "agora-api"
                assert backend["port"]["name"] in port_names
                paths[path["path"]] = annotations
    assert "/metrics" not in paths
    websocket = paths["/ws"]
    assert int(websocket["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(websocket["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    assert websocket["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert "/api" in paths


def test_k8s_configuration_is_valid_for_production_once_filled_in() -> None:
    config = k8s_object("ConfigMap", "agora-config")["data"]
    secret = k8s_object("Secret", "agora-secrets")["stringData"]
    for value in secret.values():
        assert "CHANGE_ME" in value, "the example secret holds placeholders only"
    with pytest.raises(pydantic.ValidationError) as refused:
        settings_from_environment({**config, **secret})
    assert [line.split(":")[0] for line in configuration_problems(refused.value)] == [
        "AGORA_SECRET_KEY"
    ]
    filled = {key: value.replace("CHANGE_ME", "x" * 40) for key, value in secret.items()}
    settings = settings_from_environment({**config, **filled})
    assert settings.is_production
    assert (settings.database_url or "").startswith("postgresql+asyncpg://")
    assert (settings.broker_url or "").startswith("amqp://")


# Prometheus and Grafana


def test_prometheus_scrapes_each_api_replica() -> None:
    config = load_yaml_documents(DEPLOY / "prometheus" / "prometheus.yml")[0]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["agora-api"]
    assert api["metrics_path"] == "/metrics"
    api_port = int(option_value(agora_services()["api"]["command"], "--port"))
    for discovery in api["dns_sd_configs"]:
        assert set(discovery["names"]) <= set(services())
        assert discovery["port"] == api_port
    for rule_file in config["rule_files"]:
        assert (DEPLOY / "prometheus" / Path(rule_file).name).is_file()
    mounts = services()["prometheus"]["volumes"]
    assert any(mount.startswith("./prometheus:/etc/prometheus") for mount in mounts)


def alert_rules() -> dict[str, dict[str, Any]]:
    """The alert rules of alerts.yml by name."""
    config = load_yaml_documents(DEPLOY / "prometheus" / "alerts.yml")[0]
    return {rule["alert"]: rule for group in config["groups"] for rule in group["rules"]}


def test_alerts_use_metrics_the_api_exports() -> None:
    exported = exported_metric_names() | BUILTIN_METRICS
    rules = alert_rules()
    for name, rule in rules.items():
        used = metric_names_in(rule["expr"])
        assert used, f"{name} selects no metric"
        assert used <= exported, f"{name} uses unknown metrics {used - exported}"
        assert rule["annotations"]["summary"]
    expressions = [rule["expr"] for rule in rules.values()]
    assert any('status=~"5.."' in e and "agora_http_requests_total" in e for e in expressions)
    assert any(
        "histogram_quantile" in e and "0.99" in e and "agora_http_request_duration_seconds" in e
        for e in expressions
    )
    assert any(re.search(r"\bup\{[^}]*\}\s*==\s*0", e) for e in expressions)


def test_grafana_dashboard_uses_the_provisioned_datasource_and_exported_metrics() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources = load_yaml_documents(provisioning / "datasources" / "prometheus.yaml")[0]
    uids = {source["uid"] for source in datasources["datasources"]}
    (provider,) = load_yaml_documents(provisioning / "dashboards" / "agora.yaml")[0]["providers"]
    mounts = services()["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
    exported = exported_metric_names() | BUILTIN_METRICS
    dashboards = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
    expressions = []
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in uids, panel["title"]
            for target in panel["targets"]:
                used = metric_names_in(target["expr"])
                assert used, panel["title"]
                assert used <= exported, f"{panel['title']}: {used - exported}"
                expressions.append(target["expr"])
    by_route = [e for e in expressions if "by (le, route)" in e]
    assert any("histogram_quantile(0.5," in e for e in by_route)
    assert any("histogram_quantile(0.99," in e for e in by_route)
    assert any('status=~"5.."' in e for e in expressions)
    assert any(e.startswith("sum by (route) (rate(agora_http_requests_total") for e in expressions)


# The checks themselves reject broken input


def test_checks_reject_broken_input(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="not a command"):
        check_cli_arguments(["serve"])
    with pytest.raises(AssertionError, match="needs a subcommand"):
        check_cli_arguments(["services"])
    with pytest.raises(AssertionError, match="--wrokers"):
        check_cli_arguments(["api", "--wrokers", "2"])
    with pytest.raises(AssertionError, match="workers"):
        check_cli_arguments(["api", "--workers", "two"])
    broken = tmp_path / "broken.conf"
    broken.write_text("http { server { listen 80; }")
    with pytest.raises(ValueError, match="unexpected end of file"):
        read_nginx(broken)
    broken.write_text("http { listen 80; } }")
    with pytest.raises(ValueError, match="unexpected"):
        read_nginx(broken)
    assert not metric_names_in("rate(agora_http_requests_count[5m])") <= exported_metric_names()
    with pytest.raises(pydantic.ValidationError):
        settings_from_environment({"AGORA_ENV": "production", "AGORA_PAYMENT_PROVIDERS": ""})
