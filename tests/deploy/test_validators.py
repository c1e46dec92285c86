"""Each deployment file passes the tool that reads it in production.

nginx checks its own rendered configuration, promtool the Prometheus configuration, rules and
the rules' unit tests, hadolint the Dockerfile, the Compose and GitHub workflow JSON schemas
their files, and kubernetes-validate the manifests against the Kubernetes API schemas.
"""

from __future__ import annotations

from pathlib import Path

from agora.stack.plan import StackPlan
from tests.deploy.support import DEPLOY, run_tool
from tests.support import ROOT


def _plan(tmp_path: Path) -> StackPlan:
    plan = StackPlan(deploy_dir=DEPLOY, run_dir=tmp_path, prometheus_port=9090)
    plan.write_configs()
    return plan


def _passes(*command: str) -> None:
    result = run_tool(*command)
    assert result.returncode == 0, result.stdout + result.stderr


def test_nginx_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    _passes("nginx", "-t", "-q", "-p", str(plan.nginx_config.parent), "-c", str(plan.nginx_config))


def test_promtool_accepts_the_configuration_and_rules(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    _passes("promtool", "check", "config", str(plan.prometheus_config))
    _passes("promtool", "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml"))


def test_every_alert_has_a_passing_unit_test() -> None:
    tests = DEPLOY / "prometheus" / "alerts.test.yml"
    _passes("promtool", "test", "rules", str(tests))
    alerts = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    names = {line.split(":", 1)[1].strip() for line in alerts.splitlines() if "- alert:" in line}
    tested = tests.read_text()
    assert {name for name in names if f"alertname: {name}" not in tested} == set()


def test_hadolint_accepts_the_dockerfile() -> None:
    _passes("hadolint", str(DEPLOY / "Dockerfile"))


def test_compose_file_matches_the_compose_specification() -> None:
    _passes(
        "check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")
    )


def test_github_workflow_matches_its_schema() -> None:
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows
    _passes("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, workflows))


def test_kubernetes_manifests_match_the_api_schemas() -> None:
    manifests = sorted(str(path) for path in (DEPLOY / "k8s").glob("*.yaml"))
    _passes("kubernetes-validate", "--strict", *manifests)
