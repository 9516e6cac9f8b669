"""deploy/k8s and deploy/helm, checked offline (no cluster, no kubectl, no helm binary here).

Every Kubernetes manifest is validated strictly (unknown fields are errors) by the maintained
`kubernetes-validate` package against the Kubernetes schema it ships for K8S_VERSION; then the parts the service
relies on: the probes hit routes `rag serve` serves without a token, the container port is serve.port from the
ConfigMap's config.yaml (which load_config reads), every secretKeyRef names a key docs/deployment.md explains and
the pipeline reads, and the pod is given time to drain. Helm cannot render the charts here, so the values files are
checked as YAML against the keys of the chart versions named in them, and the Kubernetes objects inside them
(volumes, env, resources, security contexts) are validated as part of a Pod.
"""

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from fastapi.testclient import TestClient
from packaging.version import Version

from rag_core.config import SECRET_VARIABLES, TokenConfig, load_config
from rag_core.security.pii import SALT_VARIABLE
from rag_core.serve.app import create_app
from tests.support.configs import make_config
from tests.support.paths import REPO

ROOT = REPO
K8S = ROOT / "deploy" / "k8s"
HELM = ROOT / "deploy" / "helm"
DOCS = ROOT / "docs" / "deployment.md"
K8S_VERSION = "1.37.0"  # the newest schema kubernetes-validate ships; the manifests use nothing newer than 1.30
SECRET_NAME = "rag-secrets"
RUN_AS_USER = 10001  # the Dockerfile's USER

# The manifests kustomization.yaml applies, by kind (the Secret is created by hand: docs/deployment.md).
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _resources() -> dict[str, dict]:
    return {doc["kind"]: doc for path in MANIFESTS for doc in _documents(path)}


@pytest.fixture(scope="module")
def resources() -> dict[str, dict]:
    return _resources()


@pytest.fixture(scope="module")
def pod(resources) -> dict:
    return resources["Deployment"]["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def container(pod) -> dict:
    (only,) = pod["containers"]
    return only


@pytest.fixture(scope="module")
def served_config(tmp_path_factory, resources):
    """The ConfigMap's config.yaml as `rag serve` reads it (RAG_CONFIG), with no environment."""
    config_map = resources["ConfigMap"]
    path = tmp_path_factory.mktemp("configmap") / "config.yaml"
    path.write_text(config_map["data"]["config.yaml"])
    return load_config(path, environ={})


# --- schemas ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid_for_kubernetes(path: Path) -> None:
    documents = _documents(path)
    assert documents, f"{path} holds no resource"
    for document in documents:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_validation_is_strict_and_recent() -> None:
    """A misspelt field must fail, and the schema must be a current Kubernetes release."""
    assert Version(kubernetes_validate.utils.latest_version()) >= Version(K8S_VERSION)
    deployment = _resources()["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="httpGett"):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_kustomization_applies_every_manifest_and_names_the_image(container) -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFESTS]
    assert {image["name"] for image in kustomization["images"]} == {container["image"].split(":")[0]}


# --- the Deployment ----------------------------------------------------------------------


def test_deployment_has_the_guides_replicas_and_resources(resources, container) -> None:
    assert resources["Deployment"]["spec"]["replicas"] == 3
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "4", "memory": "8Gi"},
    }
    # the rolling update never drops below three ready replicas; the PDB keeps two through node drains
    assert resources["Deployment"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert resources["PodDisruptionBudget"]["spec"]["selector"] == resources["Deployment"]["spec"]["selector"]


def test_selectors_match_the_pod_labels(resources) -> None:
    labels = resources["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        resources["Deployment"]["spec"]["selector"]["matchLabels"],
        resources["Service"]["spec"]["selector"],
        resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items(), selector


def test_container_serves_on_the_configured_port(resources, container, served_config) -> None:
    assert container["command"] == ["rag", "serve"], "host, port and workers must come from the config file"
    (port,) = container["ports"]
    assert port["containerPort"] == served_config.serve.port
    assert served_config.serve.host == "0.0.0.0", "the kubelet's probes and the Service reach the pod's address"
    service_port = resources["Service"]["spec"]["ports"][0]
    assert service_port["targetPort"] == port["name"]
    annotations = resources["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(served_config.serve.port)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_config_comes_from_the_configmap(resources, pod, container, served_config) -> None:
    env = {e["name"]: e for e in container["env"]}
    config_path = Path(env["RAG_CONFIG"]["value"])
    (volume,) = [v for v in pod["volumes"] if "configMap" in v]
    assert volume["configMap"]["name"] == resources["ConfigMap"]["metadata"]["name"]
    assert {item["path"] for item in volume["configMap"]["items"]} == {config_path.name}
    mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
    assert Path(mount["mountPath"]) == config_path.parent and mount["readOnly"]
    # what the cluster serves: a Milvus server (several workers need one), the Milvus Helm release's Service
    assert served_config.milvus.uri == "http://milvus.milvus.svc.cluster.local:19530"
    assert served_config.serve.workers > 1


def test_probes_hit_routes_the_service_answers_without_a_token(tmp_path, container) -> None:
    """The kubelet sends no bearer token: with tokens configured, /health must still be 200 and /ready 200/503."""
    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/health"
    assert probes["readinessProbe"]["path"] == "/ready"
    port_names = {p["name"] for p in container["ports"]}
    assert all(probe["port"] in port_names for probe in probes.values())

    token = TokenConfig(name="reader", role="reader", token_sha256="0" * 64)
    config = make_config(tmp_path, str(tmp_path / "milvus.db"), security={"tokens": [token.model_dump()]})
    client = TestClient(create_app(config, warm_up=False))
    assert client.post("/query", json={"query": "x"}).status_code == 401  # tokens are enforced ...
    answers = {path: client.get(path) for path in {probe["path"] for probe in probes.values()}}
    assert answers["/health"].status_code == 200  # ... but not on the probes
    assert answers["/ready"].status_code == 503, answers["/ready"].text  # nothing ingested: not ready, not 401
    assert answers["/ready"].json()["ready"] is False


def test_pod_drains_before_it_is_killed(pod, container, served_config) -> None:
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + served_config.serve.drain_timeout_s


def test_pod_runs_as_the_images_non_root_user(pod, container) -> None:
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] == RUN_AS_USER
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["automountServiceAccountToken"] is False
    # with a read-only root file system, everything the service writes needs a volume
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/opt/dagster/app/data"} <= mounts
    assert {"name": "HOME", "value": "/tmp"} in container["env"]


# --- secrets -----------------------------------------------------------------------------


def _secret_refs(container: dict) -> dict[str, dict]:
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})
    }


def _documented_secret_keys() -> set[str]:
    """The keys in docs/deployment.md's table of the Secret (rows starting with | `KEY` |)."""
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", DOCS.read_text(), re.M))


def test_every_secret_comes_from_a_documented_key(container) -> None:
    refs = _secret_refs(container)
    assert {ref["name"] for ref in refs.values()} == {SECRET_NAME}
    assert SECRET_NAME in DOCS.read_text()
    documented = _documented_secret_keys()
    for variable, ref in refs.items():
        assert ref["key"] == variable, "keys are the variable names, so envFrom (the Dagster chart) works too"
        assert ref["key"] in documented, f"{ref['key']} is not explained in {DOCS}"
    # the ones the guide names are all there; only the two Milvus alternatives may be missing
    assert {"MILVUS_TOKEN", "MILVUS_PASSWORD", "AUDIT_HMAC_KEY", "RAG__COMPLIANCE__DATABASE_URL"} <= set(refs)
    assert {v for v, ref in refs.items() if ref.get("optional")} == {"MILVUS_TOKEN", "MILVUS_PASSWORD"}


def test_secret_variables_reach_the_pipeline(tmp_path, resources, container) -> None:
    """Each secret variable is one the code reads: the Milvus credentials and the audit URL land in the config."""
    from rag_core.compliance.audit_store import HMAC_KEY_VARIABLE

    refs = _secret_refs(container)
    read = {SECRET_VARIABLES["token"][0], SECRET_VARIABLES["password"][0], HMAC_KEY_VARIABLE, SALT_VARIABLE}
    assert read <= set(refs)
    path = tmp_path / "config.yaml"
    path.write_text(resources["ConfigMap"]["data"]["config.yaml"])
    secrets = {variable: f"secret-{variable.lower()}" for variable in refs}
    secrets["RAG__COMPLIANCE__DATABASE_URL"] = "postgresql+psycopg2://rag:pw@postgres.databases/rag_audit"
    config = load_config(path, environ=secrets)
    assert config.milvus.token.get_secret_value() == secrets["MILVUS_TOKEN"]
    assert config.milvus.password.get_secret_value() == secrets["MILVUS_PASSWORD"]
    assert config.compliance.database_url == secrets["RAG__COMPLIANCE__DATABASE_URL"]


def test_configmap_holds_no_secret(resources) -> None:
    text = resources["ConfigMap"]["data"]["config.yaml"]
    raw = yaml.safe_load(text)
    assert "password" not in raw["milvus"] and "token" not in raw["milvus"]
    assert "database_url" not in raw.get("compliance", {})


# --- Helm values ---------------------------------------------------------------------------


def _values(name: str) -> dict:
    return yaml.safe_load((HELM / name).read_text())


def _pod_of(containers: list[dict], **spec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "values-check"},
        "spec": {"containers": containers, **spec},
    }


# The chart keys the values files may set, as dotted paths, from each chart's values.yaml and README (Milvus:
# zilliztech/milvus-helm charts/milvus, chart 5.x for Milvus 2.6; Dagster: dagster-io/dagster helm/dagster, 1.x).
# A path ends at a Kubernetes object (resources, env, volumes, ...), which is validated as part of a Pod instead;
# `[]` stands for the items of a list. A misspelt key would be silently ignored by helm: here it fails.
MILVUS_CHART_PATHS = {
    "cluster.enabled",
    "image.all.repository",
    "image.all.tag",
    "image.all.pullPolicy",
    "streaming.enabled",
    "woodpecker.enabled",
    "pulsar.enabled",
    "pulsarv3.enabled",
    "kafka.enabled",
    "minio.enabled",
    *(
        f"externalS3.{key}"
        for key in (
            "enabled",
            "host",
            "port",
            "useSSL",
            "bucketName",
            "rootPath",
            "useIAM",
            "cloudProvider",
            "region",
            "accessKey",
            "secretKey",
        )
    ),
    "etcd.enabled",
    "etcd.replicaCount",
    "etcd.persistence.enabled",
    "etcd.persistence.size",
    *(
        f"{component}.{key}"
        for component in ("mixCoordinator", "proxy", "queryNode", "dataNode")
        for key in ("enabled", "replicas", "resources")
    ),
    "indexNode.enabled",
    "streamingNode.replicas",
    "streamingNode.resources",
    "metrics.enabled",
    "metrics.serviceMonitor.enabled",
    "extraConfigFiles.user.yaml",
}
DAGSTER_CHART_PATHS = {
    "global.postgresqlSecretName",
    "generatePostgresqlPasswordSecret",
    *(
        f"postgresql.{key}"
        for key in (
            "enabled",
            "postgresqlHost",
            "postgresqlUsername",
            "postgresqlDatabase",
            "postgresqlScheme",
            "service.port",
        )
    ),
    "dagsterWebserver.replicaCount",
    "dagsterWebserver.service.type",
    "dagsterWebserver.service.port",
    "dagster-user-deployments.enabled",
    "dagster-user-deployments.enableSubchart",
    *(
        f"dagster-user-deployments.deployments[].{key}"
        for key in (
            "name",
            "image.repository",
            "image.tag",
            "image.pullPolicy",
            "dagsterApiGrpcArgs",
            "port",
            "includeConfigInLaunchedRuns.enabled",
            "env",
            "envSecrets",
            "volumes",
            "volumeMounts",
            "resources",
            "podSecurityContext",
        )
    ),
    "runLauncher.type",
    "runLauncher.config.k8sRunLauncher.jobNamespace",
    "runLauncher.config.k8sRunLauncher.loadInclusterConfig",
    "runLauncher.config.k8sRunLauncher.runK8sConfig.containerConfig.resources",
    "dagsterDaemon.enabled",
    "dagsterDaemon.runCoordinator.enabled",
    "dagsterDaemon.runCoordinator.type",
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.maxConcurrentRuns",
    "telemetry.enabled",
}


def _paths(node: object, allowed: set[str], prefix: str = "") -> set[str]:
    """The dotted key paths set in ``node``, each stopping where ``allowed`` has it (a leaf or an object)."""
    if prefix in allowed or not isinstance(node, dict | list):
        return {prefix}
    if isinstance(node, list):
        return set().union(*(_paths(item, allowed, f"{prefix}[]") for item in node))
    return set().union(*(_paths(value, allowed, f"{prefix}.{key}" if prefix else key) for key, value in node.items()))


@pytest.mark.parametrize(
    ("name", "allowed"), [("milvus-values.yaml", MILVUS_CHART_PATHS), ("dagster-values.yaml", DAGSTER_CHART_PATHS)]
)
def test_helm_values_set_only_keys_the_chart_has(name: str, allowed: set[str]) -> None:
    unknown = _paths(_values(name), allowed) - allowed
    assert not unknown, f"{name}: keys the chart does not have: {sorted(unknown)}"


def test_milvus_values_run_a_cluster_on_external_object_storage() -> None:
    values = _values("milvus-values.yaml")
    assert values["cluster"]["enabled"] is True
    assert re.fullmatch(r"v2\.6\.\d+", values["image"]["all"]["tag"]), "Woodpecker and mixCoord need Milvus 2.6"
    assert values["minio"]["enabled"] is False and values["externalS3"]["enabled"] is True
    s3 = values["externalS3"]
    assert s3["host"] and s3["port"] and s3["bucketName"]
    assert s3["accessKey"] == "" and s3["secretKey"] == "", "object-store keys come from --set or IAM, not git"
    # exactly one write-ahead log: Woodpecker with the streaming nodes, no Pulsar (v2 or v3), no Kafka
    assert values["woodpecker"]["enabled"] and values["streaming"]["enabled"]
    assert not any(values[mq]["enabled"] for mq in ("pulsar", "pulsarv3", "kafka"))
    assert values["indexNode"]["enabled"] is False, "Milvus 2.6 builds indexes in the data nodes"
    assert values["etcd"]["replicaCount"] % 2 == 1
    user_yaml = yaml.safe_load(values["extraConfigFiles"]["user.yaml"])
    assert user_yaml["common"]["security"]["authorizationEnabled"] is True


def test_milvus_values_component_resources_are_kubernetes_resources() -> None:
    values = _values("milvus-values.yaml")
    components = ("mixCoordinator", "proxy", "queryNode", "dataNode", "streamingNode")
    containers = [
        {"name": name.lower(), "image": "milvusdb/milvus", "resources": values[name]["resources"]}
        for name in components
    ]
    kubernetes_validate.validate(_pod_of(containers), K8S_VERSION, strict=True)


def test_milvus_values_service_is_the_uri_the_pipeline_uses(served_config) -> None:
    """Release `milvus` in namespace `milvus`: the chart names the proxy Service after the release."""
    values_text = (HELM / "milvus-values.yaml").read_text()
    assert "helm upgrade --install milvus zilliztech/milvus -n milvus" in values_text
    assert served_config.milvus.uri.startswith("http://milvus.milvus.svc.cluster.local:")


def test_dagster_values_use_postgres_and_the_kubernetes_run_launcher() -> None:
    values = _values("dagster-values.yaml")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    postgres = values["postgresql"]
    assert postgres["enabled"] is False and postgres["postgresqlHost"]
    assert "postgresqlPassword" not in postgres, "the password comes from the Secret named in global"
    assert values["generatePostgresqlPasswordSecret"] is False and values["global"]["postgresqlSecretName"]
    instance = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    # the driver deploy/dagster.yaml names (tests/integration/test_dagster_postgres.py runs it): no psycopg 3 here
    assert postgres["postgresqlScheme"] == instance["storage"]["postgres"]["postgres_db"]["scheme"]
    queued = values["dagsterDaemon"]["runCoordinator"]
    assert queued["type"] == instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert (
        queued["config"]["queuedRunCoordinator"]["maxConcurrentRuns"]
        == instance["run_coordinator"]["config"]["max_concurrent_runs"]
    )


def test_dagster_user_code_is_this_image_with_the_pipelines_config_and_secrets(resources) -> None:
    values = _values("dagster-values.yaml")
    user_code = values["dagster-user-deployments"]
    assert user_code["enabled"] is True
    (deployment,) = user_code["deployments"]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert deployment["image"]["repository"] == kustomization["images"][0]["name"]
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]["module_name"]
    args = deployment["dagsterApiGrpcArgs"]
    assert args[args.index("--module-name") + 1] == module
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True, "runs need the same env and volumes"
    assert deployment["envSecrets"] == [{"name": SECRET_NAME}]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    volumes = {v["name"]: v for v in deployment["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in deployment["volumeMounts"]}
    assert volumes["config"]["configMap"]["name"] == resources["ConfigMap"]["metadata"]["name"]
    assert Path(env["RAG_CONFIG"]) == Path(mounts["config"]) / "config.yaml"
    claim = resources["PersistentVolumeClaim"]
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert mounts["data"] == "/opt/dagster/app/data"
    assert "ReadWriteMany" in claim["spec"]["accessModes"], "runs are separate pods"
    assert re.fullmatch(r"http://[\w.-]+:9091", env["RAG__OBSERVABILITY__PUSHGATEWAY_URL"])
    assert deployment["podSecurityContext"]["runAsUser"] == RUN_AS_USER


def test_dagster_values_kubernetes_objects_are_valid() -> None:
    values = _values("dagster-values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    run_resources = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"]
    containers = [
        {
            "name": "user-code",
            "image": "advanced-rag-milvus",
            "env": deployment["env"],
            "volumeMounts": deployment["volumeMounts"],
            "resources": deployment["resources"],
            "envFrom": [{"secretRef": secret} for secret in deployment["envSecrets"]],
        },
        {"name": "run", "image": "advanced-rag-milvus", "resources": run_resources},
    ]
    pod = _pod_of(containers, volumes=deployment["volumes"], securityContext=deployment["podSecurityContext"])
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
