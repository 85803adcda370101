"""The Helm chart, rendered by a real helm, checked by the schemas of Kubernetes and the operators.

Every ``ci/*-values.yaml`` is linted and rendered; the manifests pass ``kubernetes-validate
--strict`` for the oldest and the newest Kubernetes it knows, and the custom resources pass the
CRD schemas of prometheus-operator and KEDA (``scripts/tools/helm.sh`` builds helm and fetches
the CRDs into ``.cache/``). The rest holds the chart to the service: the arguments parse with the
real CLI, the environment and the settings file load into the real ``Settings``.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

from consumer.cli.main import build_parser
from consumer.integrations.crypto import Keyring
from consumer.observability import Metrics
from consumer.runtime.service import _WATCHDOG_GRACE_SECONDS
from consumer.settings import ENV_PREFIX, HttpSettings, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "klaviyo-consumer"
TOOLS = ROOT / ".cache" / "tools" / "bin"
CRDS = ROOT / ".cache" / "crds"
CI_VALUES = sorted(CHART.glob("ci/*-values.yaml"))
SECRETS_DIR = "/var/run/secrets/klaviyo-consumer"

# The first run builds helm and helm-docs from source (a few minutes on a cold cache).
pytestmark = pytest.mark.timeout(900)

Manifest = dict[str, Any]


@pytest.fixture(scope="session", autouse=True)
def _tools() -> None:
    subprocess.run([ROOT / "scripts" / "tools" / "helm.sh"], check=True)


def _k8s_versions() -> tuple[str, str]:
    versions = sorted(all_versions(), key=lambda v: tuple(int(p) for p in v.split(".")))
    return versions[0], versions[-1]


OLDEST_K8S, NEWEST_K8S = _k8s_versions()


def helm(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TOOLS / "helm", *args], capture_output=True, text=True, check=False)


class RenderError(Exception):
    """helm template failed; the message is helm's."""


@cache
def _render_cached(values: tuple[str, ...], sets: tuple[str, ...], kube: str) -> str:
    argv: list[str | Path] = ["template", "rel", CHART, "--namespace", "shop"]
    argv += [a for v in values for a in ("-f", v)]
    argv += [a for s in sets for a in ("--set", s)]
    argv += ["--kube-version", kube]
    done = helm(*argv)
    if done.returncode != 0:
        raise RenderError(done.stderr)
    return done.stdout


def render(*values: Path, sets: tuple[str, ...] = (), kube: str = NEWEST_K8S) -> list[Manifest]:
    """The manifests helm renders for these values files and ``--set`` overrides."""
    text = _render_cached(tuple(str(v) for v in values), sets, kube)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def ci(name: str) -> Path:
    return CHART / "ci" / f"{name}-values.yaml"


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[Manifest], kind: str) -> Manifest:
    (found,) = of_kind(manifests, kind)
    return found


APPS = ("StatefulSet", "Deployment")


def apps(manifests: list[Manifest]) -> list[Manifest]:
    """The StatefulSets and Deployments: what runs the service."""
    return [m for m in manifests if m["kind"] in APPS]


def pod_spec(workload: Manifest) -> Manifest:
    """The pod spec of a StatefulSet, a Deployment or a Pod."""
    spec: Manifest = workload["spec"]
    return spec["template"]["spec"] if workload["kind"] in APPS else spec


def container(workload: Manifest) -> Manifest:
    (c,) = pod_spec(workload)["containers"]
    return c


def env_of(deployment: Manifest) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(deployment)["env"] if "value" in e}


# --- helm lint, Kubernetes and CRD schemas ------------------------------------------------


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_helm_lint_strict_passes(values: Path) -> None:
    done = helm("lint", "--strict", CHART, "-f", values)
    assert done.returncode == 0, done.stdout + done.stderr


class _CrdLoader(yaml.CSafeLoader):
    """YAML 1.2 on one point the CRDs rely on: a bare ``=`` is a string (an enum value)."""


_CrdLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "ScaledObject", "TriggerAuthentication"}
CRD_FILES = tuple(f"_{kind.lower()}s.yaml" for kind in CRD_KINDS)


@cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → the openAPIV3Schema of every CRD fetched into .cache/crds."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRDS.glob("*/*.yaml")):
        if not path.name.endswith(CRD_FILES):
            continue
        for crd in yaml.load_all(path.read_text(), Loader=_CrdLoader):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def validate_custom_resource(manifest: Manifest) -> None:
    """Raises jsonschema.ValidationError where the CRD schema rejects the resource."""
    schema = _crd_schemas()[(manifest["apiVersion"], manifest["kind"])]
    # Not checked against the metaschema: Kubernetes accepts Go regexes Python does not compile
    # (prometheus-operator's `^(?i)(abort|warn)?$`, on a field this chart never sets).
    jsonschema.Draft7Validator(schema).validate(manifest)


@pytest.mark.parametrize("kube", [OLDEST_K8S, NEWEST_K8S])
@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_rendered_manifests_pass_kubernetes_and_crd_schemas(values: Path, kube: str) -> None:
    manifests = render(values, kube=kube)
    assert apps(manifests)
    for manifest in manifests:
        if manifest["kind"] in CRD_KINDS:
            validate_custom_resource(manifest)
        else:
            kubernetes_validate.validate(manifest, kube, strict=True)


def test_all_on_renders_every_custom_resource() -> None:
    kinds = {m["kind"] for m in render(ci("all-on"))}
    assert kinds >= CRD_KINDS | {"PodDisruptionBudget", "Service", "ConfigMap", "Pod"}


def test_crd_validation_rejects_a_broken_resource() -> None:
    scaled = of_kind(render(ci("keda")), "ScaledObject")[0]
    del scaled["spec"]["scaleTargetRef"]
    with pytest.raises(jsonschema.ValidationError, match="scaleTargetRef"):
        validate_custom_resource(scaled)
    monitor = one(render(ci("all-on")), "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["interval"] = "often"
    with pytest.raises(jsonschema.ValidationError):
        validate_custom_resource(monitor)


def test_kubernetes_validate_strict_rejects_an_unknown_field() -> None:
    statefulset = one(render(ci("default")), "StatefulSet")
    container(statefulset)["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, NEWEST_K8S, strict=True)


# --- values: schema and documentation ----------------------------------------------------


@pytest.mark.parametrize(
    "override",
    [
        "bogus=1",
        "image.bogus=1",
        "kafka.sasl.bogus=1",
        "autoscaling.keda.bogus=1",
        "config.bogus.x=1",
    ],
)
def test_schema_rejects_unknown_values(override: str) -> None:
    with pytest.raises(RenderError, match="additional properties 'bogus' not allowed"):
        render(ci("default"), sets=(override,))


def test_schema_closes_every_object_it_describes() -> None:
    def walk(node: dict[str, Any], path: str) -> Iterator[str]:
        if "properties" in node and node.get("additionalProperties") is not False:
            yield path or "<root>"
        for key, child in node.get("properties", {}).items():
            yield from walk(child, f"{path}.{key}".lstrip("."))

    schema = json.loads((CHART / "values.schema.json").read_text())
    assert list(walk(schema, "")) == []


def test_schema_describes_exactly_the_values() -> None:
    def keys(values: dict[str, Any], schema: dict[str, Any], path: str) -> Iterator[str]:
        props = schema.get("properties", {})
        for key in values.keys() | props.keys():
            if key not in props or key not in values:
                yield f"{path}{key}"
            elif values[key] and isinstance(values[key], dict) and "properties" in props[key]:
                yield from keys(values[key], props[key], f"{path}{key}.")

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    # `global` is Helm's own.
    assert sorted(keys(values, schema, "")) == ["global"]


def test_config_sections_are_the_services_settings_sections() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    sections = set(schema["properties"]["config"]["properties"])
    # http is the chart's: probes, the Service and the scrape all use service.port.
    assert sections == set(Settings.model_fields) - {"http"}


def test_readme_is_generated_from_the_current_values() -> None:
    # The flags of `make helm-docs`, printing instead of writing.
    flags = ["-c", ".", "-s", "file", "--skip-version-footer", "-l", "error", "--dry-run"]
    done = subprocess.run(
        [TOOLS / "helm-docs", *flags],
        cwd=CHART,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == (CHART / "README.md").read_text().strip(), (
        "helm/klaviyo-consumer/README.md is stale: run `make helm-docs`"
    )


def test_every_value_is_documented() -> None:
    readme = (CHART / "README.md").read_text()
    rows = re.findall(r"^\| (\S+) \| \S+ \| .* \| (.*) \|$", readme, flags=re.MULTILINE)
    documented = {key for key, description in rows if description.strip()}
    assert documented == {key for key, _ in rows}, "values without a `# --` description"
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def leaves(node: Any, path: str) -> Iterator[str]:
        if isinstance(node, dict) and node and path not in documented:
            for key, child in node.items():
                yield from leaves(child, f"{path}.{key}".lstrip("."))
        else:
            yield path

    missing = [leaf for leaf in leaves(values, "") if leaf not in documented]
    assert missing == []


# --- the pods ------------------------------------------------------------------------------


def workloads(manifests: list[Manifest]) -> list[Manifest]:
    """StatefulSets, Deployments and the helm-test Pods: everything that runs a container."""
    return apps(manifests) + of_kind(manifests, "Pod")


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_pod_runs_locked_down(values: Path) -> None:
    for workload in workloads(render(values)):
        spec = pod_spec(workload)
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["runAsUser"] == 10001
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        c = container(workload)["securityContext"]
        assert c["readOnlyRootFilesystem"] is True
        assert c["allowPrivilegeEscalation"] is False
        assert c["capabilities"] == {"drop": ["ALL"]}
        assert c["runAsUser"] == 10001
        assert c["seccompProfile"] == {"type": "RuntimeDefault"}
        tmp = {v["name"]: v for v in spec["volumes"]}["tmp"]
        assert "emptyDir" in tmp
        mounts = {m["name"]: m["mountPath"] for m in container(workload)["volumeMounts"]}
        assert mounts["tmp"] == "/tmp"  # noqa: S108 -- the pod's own emptyDir


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_probes_hit_the_services_endpoints_on_its_port(values: Path) -> None:
    for deployment in apps(render(values)):
        c = container(deployment)
        (port,) = c["ports"]
        assert port["name"] == "http"
        assert env_of(deployment)["KLAVIYO_CONSUMER_HTTP__PORT"] == str(port["containerPort"])
        paths = {
            probe: (c[probe]["httpGet"]["path"], c[probe]["httpGet"]["port"])
            for probe in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        assert paths == {
            "startupProbe": ("/healthz", "http"),
            "livenessProbe": ("/healthz", "http"),
            "readinessProbe": ("/readyz", "http"),
        }


def test_default_port_is_the_services_default() -> None:
    statefulset = one(render(ci("default")), "StatefulSet")
    assert container(statefulset)["ports"][0]["containerPort"] == HttpSettings().port == 8080


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_grace_period_outlasts_the_shutdown_deadline(values: Path) -> None:
    for deployment in apps(render(values)):
        args = build_parser().parse_args(container(deployment)["args"])
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        assert args.command == "run"
        assert grace > args.shutdown_seconds + _WATCHDOG_GRACE_SECONDS


def test_a_grace_period_within_the_shutdown_deadline_fails_to_render() -> None:
    with pytest.raises(RenderError, match="must exceed shutdownSeconds"):
        render(ci("default"), sets=("shutdownSeconds=30", "terminationGracePeriodSeconds=35"))
    rendered = one(render(ci("default"), sets=("shutdownSeconds=30",)), "StatefulSet")
    assert pod_spec(rendered)["terminationGracePeriodSeconds"] == 45


# --- configuration and secrets -------------------------------------------------------------


def test_config_checksum_follows_the_settings() -> None:
    def checksum(*sets: str) -> str:
        statefulset = one(render(ci("default"), sets=sets), "StatefulSet")
        return str(statefulset["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    base = checksum()
    assert base == checksum()
    assert checksum("config.logging.level=DEBUG") != base
    assert checksum("config.derive.checkpoint_max_records=100") != base
    assert re.fullmatch(r"[0-9a-f]{64}", base)


FAKE_SECRETS = {
    "kafka-sasl": {"user": "svc-klaviyo", "pass": "sasl-pw"},
    "kafka-mtls": {
        "ca.crt": "fake-ca-pem",
        "tls.crt": "fake-cert-pem",
        "tls.key": "fake-key-pem",
        "key-password": "key-pw",
    },
    "schema-registry": {"basic-auth": "registry:registry-pw"},
    "klaviyo-kek": {
        "k1": "MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE=",
        "k2": "MjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjI=",
    },
}


def _materialise(deployment: Manifest, root: Path) -> dict[str, str]:
    """Lay out the pod's Secret and ConfigMap volumes under ``root`` as the kubelet would;
    return the container's environment with paths moved under ``root``."""
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    for mount in container(deployment)["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "secret" not in volume:
            continue
        assert mount["readOnly"] is True
        assert mount["mountPath"].startswith(SECRETS_DIR)
        data = FAKE_SECRETS[volume["secret"]["secretName"]]
        items = volume["secret"].get("items") or [{"key": k, "path": k} for k in data]
        target = root / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True)
        for item in items:
            (target / item["path"]).write_text(data[item["key"]])
    return {
        name: value.replace(SECRETS_DIR, str(root / SECRETS_DIR.lstrip("/")))
        for name, value in env_of(deployment).items()
    }


def test_rendered_environment_and_settings_file_load_into_the_service_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifests = render(ci("all-on"))
    (configmap,) = [m for m in of_kind(manifests, "ConfigMap") if "settings.toml" in m["data"]]
    env = _materialise(apps(manifests)[0], tmp_path)
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text(configmap["data"]["settings.toml"])
    assert env.pop("KLAVIYO_CONSUMER_SETTINGS_FILE") == "/etc/klaviyo-consumer/settings.toml"
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in {**env, "KLAVIYO_CONSUMER_SETTINGS_FILE": str(settings_file)}.items():
        monkeypatch.setenv(name, value)

    settings = load_settings()

    kafka = settings.kafka
    assert kafka.bootstrap_servers.startswith("kafka-0.kafka:9093")
    assert (kafka.group_id, kafka.security_protocol, kafka.sasl_mechanism) == (
        "klaviyo",
        "SASL_SSL",
        "SCRAM-SHA-256",
    )
    assert kafka.sasl_username == "svc-klaviyo"
    assert kafka.sasl_password is not None and kafka.sasl_password.get_secret_value() == "sasl-pw"
    assert kafka.ssl_key_password is not None
    assert kafka.ssl_key_password.get_secret_value() == "key-pw"
    for location, content in [
        (kafka.ssl_ca_location, "fake-ca-pem"),
        (kafka.ssl_certificate_location, "fake-cert-pem"),
        (kafka.ssl_key_location, "fake-key-pem"),
    ]:
        assert location is not None and location.read_text() == content
    assert kafka.session_timeout_ms == 30_000  # extraEnv
    registry = settings.schema_registry
    assert registry.basic_auth is not None
    assert registry.basic_auth.get_secret_value() == "registry:registry-pw"
    assert Keyring.from_settings(settings.integrations).key_ids == ("k1", "k2")
    assert settings.integrations.primary_key_id == "k2"
    # The settings file: sections as given, whole numbers written as integers (not `1e+04`).
    assert "\ncheckpoint_max_records = 10000\n" in settings_file.read_text()
    assert settings.derive.checkpoint_max_records == 10_000
    assert settings.topics.internal_partitions == 24
    assert settings.delivery.linger_seconds == 0.25
    assert settings.klaviyo.max_connections == 128


def test_no_secret_value_is_in_the_rendered_manifests() -> None:
    text = _render_cached((str(ci("all-on")),), (), NEWEST_K8S)
    assert "kind: Secret\n" not in text
    for secret in FAKE_SECRETS.values():
        for value in secret.values():
            assert value not in text


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("config.integrations.key_encryption_keys.k1=abc",), "use keyEncryptionKeys"),
        (("config.kafka.sasl_password=pw",), "config.kafka.sasl_password would be overridden"),
        (("kafka.securityProtocol=SASL_SSL",), "kafka.sasl.mechanism is required"),
        (("keyEncryptionKeys.existingSecret=",), "keyEncryptionKeys.existingSecret is required"),
        (("kafka.bootstrapServers=",), "kafka.bootstrapServers is required"),
        (
            ("workload=Deployment", "localState.enabled=true"),
            "localState.volume=persistentVolume needs workload=StatefulSet",
        ),
        (("autoscaling.hpa.enabled=true", "autoscaling.minReplicas=0"), "minReplicas 0 needs KEDA"),
    ],
)
def test_misconfiguration_fails_to_render(sets: tuple[str, ...], message: str) -> None:
    with pytest.raises(RenderError, match=re.escape(message)):
        render(ci("default"), sets=sets)


# --- stages and autoscaling ---------------------------------------------------------------


def test_hpa_and_keda_together_fail_to_render() -> None:
    with pytest.raises(RenderError, match="both true: enable at most one"):
        render(ci("hpa"), sets=("autoscaling.keda.enabled=true",))


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_each_deployment_has_at_most_one_autoscaler(values: Path) -> None:
    manifests = render(values)
    targets = [
        m["spec"]["scaleTargetRef"]["name"]
        for m in of_kind(manifests, "HorizontalPodAutoscaler") + of_kind(manifests, "ScaledObject")
    ]
    assert len(targets) == len(set(targets))
    for workload in apps(manifests):
        scaled = workload["metadata"]["name"] in targets
        assert ("replicas" in workload["spec"]) is not scaled


def test_hpa_values_scale_on_cpu_and_memory() -> None:
    manifests = render(ci("hpa"))
    assert of_kind(manifests, "ScaledObject") == []
    hpa = one(manifests, "HorizontalPodAutoscaler")
    target = one(manifests, "StatefulSet")["metadata"]["name"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": target,
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}


def kafka_triggers(scaled_object: Manifest) -> set[tuple[str, str]]:
    return {
        (t["metadata"]["consumerGroup"], t["metadata"]["topic"])
        for t in scaled_object["spec"]["triggers"]
        if t["type"] == "kafka"
    }


def test_keda_scales_the_combined_deployment_on_both_groups_lag() -> None:
    manifests = render(ci("keda"))
    assert of_kind(manifests, "HorizontalPodAutoscaler") == []
    scaled = one(manifests, "ScaledObject")
    # The stages' groups: `<kafka.group_id>-derive` and `-deliver` (derive_stage, deliver_stage).
    assert kafka_triggers(scaled) == {
        ("shop-events-derive", "shop.orders.v1"),
        ("shop-events-derive", "returns"),
        ("shop-events-derive", "storefront-events"),
        ("shop-events-deliver", "klaviyo-outbox"),
    }
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    assert (trigger["sasl"], trigger["tls"], trigger["lagThreshold"]) == (
        "scram_sha512",
        "enable",
        "5000",
    )
    auth = one(manifests, "TriggerAuthentication")
    assert scaled["spec"]["triggers"][0]["authenticationRef"] == {"name": auth["metadata"]["name"]}
    refs = {(r["parameter"], r["name"]) for r in auth["spec"]["secretTargetRef"]}
    assert refs == {
        ("username", "kafka-credentials"),
        ("password", "kafka-credentials"),
        ("ca", "kafka-ca"),
    }


def test_split_stages_run_and_scale_separately() -> None:
    manifests = render(ci("split-stages"))
    deployments = {d["metadata"]["name"]: d for d in apps(manifests)}
    stages = {
        name: build_parser().parse_args(container(d)["args"]).stage
        for name, d in deployments.items()
    }
    assert stages == {
        "rel-klaviyo-consumer-derive": "derive",
        "rel-klaviyo-consumer-deliver": "deliver",
    }
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind(manifests, "ScaledObject")}
    derive, deliver = scaled["rel-klaviyo-consumer-derive"], scaled["rel-klaviyo-consumer-deliver"]
    assert kafka_triggers(derive) == {
        ("klaviyo-consumer-derive", topic) for topic in ("orders", "returns", "storefront-events")
    }
    assert kafka_triggers(deliver) == {("klaviyo-consumer-deliver", "klaviyo-outbox")}
    assert deliver["spec"]["maxReplicaCount"] == 24  # the stage's override
    assert deliver["spec"]["triggers"][0]["metadata"]["lagThreshold"] == "200"
    assert derive["spec"]["maxReplicaCount"] == 6
    # Each workload's Services, PDB and selector pick its own pods only.
    for kind in ("Service", "PodDisruptionBudget"):
        selectors = [m["spec"]["selector"] for m in of_kind(manifests, kind)]
        components = [(s.get("matchLabels") or s)["app.kubernetes.io/component"] for s in selectors]
        assert set(components) == {"derive", "deliver"}


# --- workload kind and instance ids ---------------------------------------------------------


def headless(service: Manifest) -> bool:
    return bool(service["spec"].get("clusterIP") == "None")


def pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_each_pods_instance_id_is_its_pod_name(values: Path) -> None:
    for workload in apps(render(values)):
        c = container(workload)
        # Kubernetes expands $(POD_NAME) in args from the container's environment.
        assert build_parser().parse_args(c["args"]).instance_id == "$(POD_NAME)"
        pod_name = {e["name"]: e for e in c["env"]}["POD_NAME"]
        assert pod_name["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_statefulsets_are_the_default_each_governed_by_a_headless_service() -> None:
    manifests = render(ci("split-stages"))
    assert of_kind(manifests, "Deployment") == []
    services = {s["metadata"]["name"]: s for s in of_kind(manifests, "Service")}
    statefulsets = of_kind(manifests, "StatefulSet")
    assert len(statefulsets) == 2
    for statefulset in statefulsets:
        spec = statefulset["spec"]
        assert spec["podManagementPolicy"] == "Parallel"
        assert spec["updateStrategy"] == {"type": "RollingUpdate"}
        assert "volumeClaimTemplates" not in spec  # no local state store unless asked for
        governing = services[spec["serviceName"]]
        assert headless(governing)
        assert governing["spec"]["selector"] == spec["selector"]["matchLabels"]
        assert spec["selector"]["matchLabels"].items() <= pod_labels(statefulset).items()


def _state_volume(workload: Manifest) -> tuple[Any, Any, Any]:
    """The state mount, the local state directory setting, and the state volume of a pod."""
    c = container(workload)
    mount = [m for m in c["volumeMounts"] if m["name"] == "state"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    volumes = [v for v in workload["spec"]["template"]["spec"]["volumes"] if v["name"] == "state"]
    return mount, env.get(f"{ENV_PREFIX}DERIVE__LOCAL_STATE_DIR"), volumes


def test_local_state_gives_each_derive_pod_a_claim_of_its_own() -> None:
    path = "/var/lib/klaviyo-consumer/state"
    by_stage = {w["metadata"]["name"].rsplit("-", 1)[1]: w for w in apps(render(ci("statefulset")))}
    derive, deliver = by_stage["derive"], by_stage["deliver"]
    mount, directory, volumes = _state_volume(derive)
    assert mount == [{"name": "state", "mountPath": path}] and directory == path
    assert volumes == []  # the claim is the volume
    (claim,) = derive["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert _state_volume(deliver) == ([], None, [])  # deliver keeps no state
    assert "volumeClaimTemplates" not in deliver["spec"]


def test_local_state_on_an_empty_dir_works_with_deployments() -> None:
    sets = ("localState.enabled=true", "localState.volume=emptyDir", "localState.size=1Gi")
    for workload in apps(render(ci("deployment"), sets=sets)):
        mount, directory, volumes = _state_volume(workload)
        if workload["metadata"]["name"].endswith("-deliver"):
            assert (mount, directory, volumes) == ([], None, [])
            continue
        assert directory == mount[0]["mountPath"]
        assert volumes == [{"name": "state", "emptyDir": {"sizeLimit": "1Gi"}}]


def test_deployment_workload_surges_and_has_no_headless_service() -> None:
    manifests = render(ci("deployment"))
    assert of_kind(manifests, "StatefulSet") == []
    deployments = of_kind(manifests, "Deployment")
    assert len(deployments) == 2
    for deployment in deployments:
        assert "serviceName" not in deployment["spec"]
        assert deployment["spec"]["strategy"]["rollingUpdate"] == {
            "maxSurge": 1,
            "maxUnavailable": 0,
        }
    assert [s for s in of_kind(manifests, "Service") if headless(s)] == []


@pytest.mark.parametrize(
    ("values", "sets", "kind"),
    [
        ("hpa", (), "StatefulSet"),
        ("keda", (), "StatefulSet"),
        ("statefulset", (), "StatefulSet"),
        ("deployment", (), "Deployment"),
        ("keda", ("workload=Deployment",), "Deployment"),
    ],
)
def test_autoscalers_target_the_workload_kind(
    values: str, sets: tuple[str, ...], kind: str
) -> None:
    manifests = render(ci(values), sets=sets)
    kinds = {w["metadata"]["name"]: w["kind"] for w in apps(manifests)}
    scalers = of_kind(manifests, "HorizontalPodAutoscaler") + of_kind(manifests, "ScaledObject")
    assert scalers
    for scaler in scalers:
        ref = scaler["spec"]["scaleTargetRef"]
        assert ref["apiVersion"] == "apps/v1"
        assert ref["kind"] == kinds[ref["name"]] == kind


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_each_pdb_covers_one_workloads_pods(values: Path) -> None:
    manifests = render(values)
    for pdb in of_kind(manifests, "PodDisruptionBudget"):
        wanted = pdb["spec"]["selector"]["matchLabels"].items()
        covered = [
            w["metadata"]["name"] for w in apps(manifests) if wanted <= pod_labels(w).items()
        ]
        assert covered == [pdb["metadata"]["name"]]


def test_schema_rejects_an_unknown_workload_kind() -> None:
    with pytest.raises(RenderError, match="workload"):
        render(ci("default"), sets=("workload=DaemonSet",))


# --- monitoring ------------------------------------------------------------------------------


def test_prometheus_rule_carries_the_alerts_file() -> None:
    alerts = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    rule = one(render(ci("all-on")), "PrometheusRule")
    groups = rule["spec"]["groups"]
    assert [g["name"] for g in groups] == [g["name"] for g in alerts["groups"]]
    for rendered, source in zip(groups, alerts["groups"], strict=True):
        for r, s in zip(rendered["rules"], source["rules"], strict=True):
            assert r["expr"] == s["expr"]
            assert r.get("annotations") == s.get("annotations")  # {{ $labels }} left for Prometheus
            if "alert" in s:
                assert r["labels"] == {"team": "commerce", **s.get("labels", {})}


def test_dashboard_configmap_is_labelled_for_the_grafana_sidecar() -> None:
    (dashboard,) = [
        m
        for m in of_kind(render(ci("all-on")), "ConfigMap")
        if "grafana_dashboard" in m["metadata"]["labels"]
    ]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    (content,) = dashboard["data"].values()
    assert json.loads(content) == json.loads((CHART / "files" / "dashboard.json").read_text())


def test_service_monitor_scrapes_every_deployments_service() -> None:
    manifests = render(ci("all-on"))
    monitor = one(manifests, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    selector = monitor["spec"]["selector"]
    wanted = selector["matchLabels"].items()
    (skipped,) = selector["matchExpressions"]
    assert skipped["operator"] == "DoesNotExist"

    def selected(service: Manifest) -> bool:
        labels = service["metadata"]["labels"]
        return wanted <= labels.items() and skipped["key"] not in labels

    services = of_kind(manifests, "Service")
    scraped = [s["metadata"]["name"] for s in services if selected(s)]
    assert scraped == ["rel-klaviyo-consumer-derive", "rel-klaviyo-consumer-deliver"]
    for service in services:
        assert [p["name"] for p in service["spec"]["ports"]] == ["http"]
        # The headless ones share the selector labels: only the key above keeps them out.
        assert wanted <= service["metadata"]["labels"].items()


@pytest.mark.parametrize(("body", "passes"), [(Metrics().exposition(), True), (b"up 1\n", False)])
def test_helm_test_pod_checks_the_metrics_endpoint(body: bytes, passes: bool) -> None:
    pods = of_kind(render(ci("default")), "Pod")
    (pod,) = pods
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    command = container(pod)["command"]
    (service,) = [s for s in of_kind(render(ci("default")), "Service") if not headless(s)]
    assert command[-1] == f"http://{service['metadata']['name']}.shop.svc:8080/metrics"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/metrics" else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        # The image's python runs the same script in the cluster.
        assert command[0] == "python"
        done = subprocess.run(
            [sys.executable, *command[1:-1], url], capture_output=True, text=True, check=False
        )
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    assert (done.returncode == 0) is passes, done.stderr


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_notes_render(values: Path, tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "notes-probe.yaml").write_text(
        'notes: {{ include "klaviyo-consumer.notes" . | toJson }}\n'
    )
    done = helm("template", "rel", chart, "-f", values, "--show-only", "templates/notes-probe.yaml")
    assert done.returncode == 0, done.stderr
    notes = yaml.safe_load(done.stdout)["notes"]
    for workload in apps(render(values)):
        assert f"{workload['kind'].lower()}/{workload['metadata']['name']}" in notes
