"""Static checks of the Docker deployment files (no Docker needed).

docker-compose.yml, Dockerfile and deploy/dagster.yaml are what a user runs with
`docker compose up`; these tests pin the parts that the pipeline relies on: the Milvus
version and its health check, where the Dagster services find Milvus and PostgreSQL,
that the Dagster instance config is valid for the installed Dagster, that the image serves
`rag serve` as a non-root user, and that Prometheus scrapes the compose services and the
Dagster runs push to the compose Pushgateway. Docker itself cannot run here: nothing is built.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from rag_core.config import ServeConfig
from tests.support.paths import REPO

ROOT = REPO
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DAGSTER_YAML = ROOT / "deploy" / "dagster.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
RUN_AS_USER = "10001"  # the image's user; deploy/k8s/deployment.yaml's runAsUser

DAGSTER_SERVICES = ("dagster-webserver", "dagster-daemon")
PG_ENV = {
    "DAGSTER_POSTGRES_USER": "u",
    "DAGSTER_POSTGRES_PASSWORD": "p",
    "DAGSTER_POSTGRES_HOST": "postgres",
    "DAGSTER_POSTGRES_DB": "d",
    "DAGSTER_POSTGRES_PORT": "5432",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def instance_yaml() -> dict:
    return yaml.safe_load(DAGSTER_YAML.read_text())


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, args = line.partition(" ")
        out.append((instr.upper(), args.strip()))
    return out


def _env(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _argv(value) -> list[str]:
    return list(value) if isinstance(value, list) else shlex.split(value)


def _ports(service: dict) -> set[str]:
    return {str(p).rsplit(":", 1)[-1].split("/")[0] for p in service.get("ports", [])}


def _published(service: dict) -> set[str]:
    """Host ports, with compose's ${VAR:-default} read as its default."""
    mappings = (re.sub(r"\$\{\w+:-([^}]+)\}", r"\1", str(p)) for p in service.get("ports", []))
    return {m.rsplit(":", 1)[0] for m in mappings if ":" in m}


def _depends(service: dict) -> dict:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: {"condition": "service_started"} for d in deps}
    return deps


# --- Milvus ----------------------------------------------------------------------------


def test_milvus_image_is_a_supported_release(services):
    image = services["milvus-standalone"]["image"]
    repo, _, tag = image.partition(":")
    assert repo == "milvusdb/milvus"
    assert re.fullmatch(r"v2\.[56]\.\d+", tag), f"want Milvus v2.5.x or v2.6.x, got {image}"


def test_milvus_runs_standalone_and_publishes_its_ports(services):
    milvus = services["milvus-standalone"]
    assert _argv(milvus["command"]) == ["milvus", "run", "standalone"]
    assert {"19530", "9091"} <= _ports(milvus)
    assert {"19530", "9091"} <= _published(milvus)


def test_milvus_uses_etcd_and_minio(services):
    assert "etcd" in services and "minio" in services
    assert services["etcd"]["image"].startswith("quay.io/coreos/etcd:v3.5.")
    assert services["minio"]["image"].startswith("minio/minio")
    milvus = services["milvus-standalone"]
    assert {"etcd", "minio"} <= set(_depends(milvus))
    env = _env(milvus)
    assert env["ETCD_ENDPOINTS"] == "etcd:2379"
    assert env["MINIO_ADDRESS"] == "minio:9000"


def test_milvus_data_is_persisted_under_volumes(services):
    for name, target in (("etcd", "/etcd"), ("minio", "/minio_data"), ("milvus-standalone", "/var/lib/milvus")):
        mounts = [str(v) for v in services[name]["volumes"]]
        assert any(m.endswith(f"/volumes/{name.split('-')[0]}:{target}") for m in mounts), (name, mounts)


# --- PostgreSQL ------------------------------------------------------------------------


def test_postgres_service(services):
    pg = services["postgres"]
    assert pg["image"].split(":")[0] == "postgres"
    env = _env(pg)
    for var in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        assert env[var].startswith("${DAGSTER_POSTGRES_"), (var, env[var])
    assert "pg_isready" in " ".join(_argv(pg["healthcheck"]["test"]))


# --- Dagster services ------------------------------------------------------------------


def test_webserver_and_daemon_share_build_and_environment(services):
    web, daemon = (services[s] for s in DAGSTER_SERVICES)
    assert web["build"] == daemon["build"]
    assert Path(ROOT, web["build"]["context"], web["build"].get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    for svc in (web, daemon):
        env = _env(svc)
        assert env["DAGSTER_HOME"] == "/opt/dagster/dagster_home"
        assert env["MILVUS_URI"] == "http://milvus-standalone:19530"
        for var in PG_ENV:
            assert var in env, var
        assert env["DAGSTER_POSTGRES_HOST"] == "postgres"
        # credentials match the ones the postgres service is created with
        pg_env = _env(services["postgres"])
        assert env["DAGSTER_POSTGRES_USER"] == pg_env["POSTGRES_USER"]
        assert env["DAGSTER_POSTGRES_PASSWORD"] == pg_env["POSTGRES_PASSWORD"]
        assert env["DAGSTER_POSTGRES_DB"] == pg_env["POSTGRES_DB"]


def test_dagster_services_wait_for_healthy_postgres_and_milvus(services):
    for name in DAGSTER_SERVICES:
        deps = _depends(services[name])
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["milvus-standalone"]["condition"] == "service_healthy", name


def test_milvus_uri_host_is_a_compose_service(services):
    host = _env(services["dagster-webserver"])["MILVUS_URI"].split("//")[1].split(":")[0]
    assert host in services
    assert "19530" in _ports(services[host])


def test_webserver_serves_workspace_on_3000(services):
    web = services["dagster-webserver"]
    argv = _argv(web.get("command") or web.get("entrypoint"))
    assert argv[0] == "dagster-webserver"
    assert argv[argv.index("-h") + 1] == "0.0.0.0"
    assert argv[argv.index("-p") + 1] == "3000"
    assert argv[argv.index("-w") + 1] == "workspace.yaml"
    assert "3000" in _ports(web)


def test_data_and_the_corpus_are_mounted(services):
    for name in DAGSTER_SERVICES:
        mounts = [str(v) for v in services[name]["volumes"]]
        data = [m for m in mounts if m.split(":")[1] == "/opt/dagster/app/data"]
        assert data, (name, mounts)
        corpus = [m for m in mounts if m.split(":")[1] == "/opt/dagster/app/examples/corpus"]
        assert corpus and corpus[0].endswith(":ro"), (name, mounts)
    web_data = {m for m in map(str, services["dagster-webserver"]["volumes"])}
    daemon_data = {m for m in map(str, services["dagster-daemon"]["volumes"])}
    assert web_data == daemon_data, "webserver and daemon must see the same data"


def test_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    for svc in services.values():
        for mount in map(str, svc.get("volumes", [])):
            source = mount.split(":")[0]
            if not source.startswith((".", "/", "$")):
                assert source in declared, source


# --- Dockerfile ------------------------------------------------------------------------


def test_dockerfile_installs_cpu_torch_before_the_project(dockerfile):
    runs = [args for instr, args in dockerfile if instr == "RUN"]
    torch_i = next(i for i, r in enumerate(runs) if "torch==" in r)
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch_i]
    pin = re.search(r"torch==(\S+)", runs[torch_i]).group(1)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f"<={pin}" in pyproject, "the CPU torch pin must satisfy the embeddings extra"
    proj_i = next(i for i, r in enumerate(runs) if re.search(r"pip install \"?\.\[", r))
    assert torch_i < proj_i
    extras = re.search(r"\.\[([^\]]+)\]", runs[proj_i]).group(1).split(",")
    assert {"embeddings", "postgres"} <= {e.strip() for e in extras}


def test_dockerfile_copies_what_the_image_needs(dockerfile):
    copied = " ".join(args for instr, args in dockerfile if instr == "COPY").split()
    for path in (
        "pyproject.toml",
        "README.md",
        "rag_core",
        "rag_assets",
        "workspace.yaml",
        "config.template.yaml",
        "examples/corpus",
    ):
        assert path in copied, path
    assert ("COPY", "deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml") in dockerfile


def test_dockerfile_default_command_serves_queries_on_all_interfaces(dockerfile):
    """`docker run IMAGE` is the query service, reachable from outside the container on serve.port."""
    cmd = yaml.safe_load([args for instr, args in dockerfile if instr == "CMD"][-1])
    assert cmd[:2] == ["rag", "serve"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--port") + 1] == str(ServeConfig().port)
    exposed = {port for instr, args in dockerfile if instr == "EXPOSE" for port in args.split()}
    assert {str(ServeConfig().port), "3000"} <= exposed


def test_dockerfile_runs_as_a_non_root_user_that_owns_what_it_writes(dockerfile):
    user = [args for instr, args in dockerfile if instr == "USER"][-1]
    assert user.split(":")[0] == RUN_AS_USER
    runs = " ".join(args for instr, args in dockerfile if instr == "RUN")
    assert f"--uid {RUN_AS_USER}" in runs
    chown = re.search(r"chown -R (\S+) ([^&]+)", runs)
    assert chown, "the data dir and Dagster's storage must belong to the image's user"
    assert {"/opt/dagster/app/data", "$DAGSTER_HOME/storage"} <= set(chown.group(2).split())


def test_image_can_launch_kubernetes_runs(dockerfile):
    """The K8sRunLauncher's run pods load the chart's instance config, which names dagster_k8s."""
    runs = [args for instr, args in dockerfile if instr == "RUN"]
    extras = re.search(r"\.\[([^\]]+)\]", next(r for r in runs if re.search(r"pip install \"?\.\[", r))).group(1)
    assert "k8s" in {e.strip() for e in extras.split(",")}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras_table = pyproject["project"]["optional-dependencies"]
    k8s_pin = next(d for d in extras_table["k8s"] if d.startswith("dagster-k8s=="))
    postgres_pin = next(d for d in extras_table["postgres"] if d.startswith("dagster-postgres=="))
    assert k8s_pin.split("==")[1] == postgres_pin.split("==")[1], "dagster libraries share one release"


# --- rag serve, Prometheus and the Pushgateway in compose ---------------------------------


def test_rag_serve_is_the_image_default_command_published_on_serve_port(services, dockerfile):
    serve = services["rag-serve"]
    assert serve["build"] == services["dagster-webserver"]["build"]
    assert "command" not in serve, "rag-serve runs the image's CMD (rag serve --host 0.0.0.0 --port 9090)"
    assert str(ServeConfig().port) in _ports(serve)
    health = " ".join(_argv(serve["healthcheck"]["test"]))
    assert f"localhost:{ServeConfig().port}/health" in health


def test_rag_serve_shares_milvus_audit_and_query_log_with_dagster(services):
    serve, daemon = services["rag-serve"], services["dagster-daemon"]
    for var in ("MILVUS_URI", "RAG__COMPLIANCE__DATABASE_URL", "AUDIT_HMAC_KEY", "RAG_PII_SALT"):
        assert _env(serve)[var] == _env(daemon)[var], var
    # the drift assets (run by the daemon) read the query log rag serve writes under data/
    data = [m for m in map(str, serve["volumes"]) if m.split(":")[1] == "/opt/dagster/app/data"]
    assert data and data[0] in map(str, daemon["volumes"])
    deps = _depends(serve)
    assert deps["milvus-standalone"]["condition"] == deps["postgres"]["condition"] == "service_healthy"


def test_rag_serve_stops_after_its_drain(services):
    grace = services["rag-serve"]["stop_grace_period"]
    assert grace.endswith("s") and float(grace[:-1]) > ServeConfig().drain_timeout_s


def test_dagster_runs_push_to_the_compose_pushgateway(services):
    for name in DAGSTER_SERVICES:
        url = _env(services[name])["RAG__OBSERVABILITY__PUSHGATEWAY_URL"]
        host, port = url.split("//")[1].rstrip("/").split(":")
        assert host == "pushgateway" and host in services, url
        assert port == "9091", "the Pushgateway listens on 9091 unless --web.listen-address says otherwise"
        assert not any("web.listen-address" in a for a in _argv(services[host].get("command") or []))


def test_prometheus_mounts_the_repository_config_and_rules(services):
    mounts = {m.split(":")[1]: m.split(":")[0] for m in map(str, services["prometheus"]["volumes"])}
    assert mounts["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus/prometheus.yml"
    assert mounts["/etc/prometheus/alerts.yml"] == "./deploy/prometheus/alerts.yml"
    argv = _argv(services["prometheus"]["command"])
    assert "--config.file=/etc/prometheus/prometheus.yml" in argv
    prometheus_yml = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    for rule_file in prometheus_yml.get("rule_files", []):
        # relative rule paths are read next to the config file: each must be a mounted file
        assert str(Path("/etc/prometheus", rule_file)) in mounts, rule_file
        assert (ROOT / "deploy/prometheus" / rule_file).is_file(), rule_file


def test_prometheus_scrapes_compose_services(services):
    """Each static target of deploy/prometheus/prometheus.yml is a compose service listening on that port."""
    listening = {"rag-serve": {str(ServeConfig().port)}, "pushgateway": {"9091"}}
    prometheus_yml = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = [
        t for job in prometheus_yml["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]
    ]
    assert targets
    for target in targets:
        host, port = target.rsplit(":", 1)
        assert host in services, f"{target}: not a compose service"
        assert port in listening.get(host, _ports(services[host])), target
    jobs = {job["job_name"] for job in prometheus_yml["scrape_configs"]}
    assert "rag-pipeline" in jobs, "the alert rules and the dashboard select job=rag-pipeline"


def test_no_two_services_publish_the_same_host_port(services):
    published = [p for svc in services.values() for p in _published(svc)]
    assert len(published) == len(set(published)), sorted(published)


def test_dockerignore_keeps_local_state_out():
    entries = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    for entry in (".venv", "data", ".dagster", "volumes", ".git"):
        assert entry in entries, entry
    assert any("__pycache__" in e for e in entries)
    # nothing the Dockerfile copies may be ignored
    for needed in ("deploy", "examples", "rag_core", "rag_assets", "workspace.yaml"):
        assert needed not in entries


# --- deploy/dagster.yaml ---------------------------------------------------------------


def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    else:
        yield path, node


def test_instance_storage_is_postgres_from_env(instance_yaml):
    assert set(instance_yaml["storage"]) == {"postgres"}
    db = instance_yaml["storage"]["postgres"]["postgres_db"]
    for key in ("username", "password", "hostname", "db_name"):
        assert isinstance(db[key], dict) and set(db[key]) == {"env"}, key
        assert db[key]["env"].startswith("DAGSTER_POSTGRES_"), key
    # no literal credentials anywhere in the file
    for path, _value in _leaves(instance_yaml):
        if any(re.search(r"password|secret|token|postgres_url", str(p), re.I) for p in path):
            assert path[-1] == "env", path


def test_instance_env_vars_are_set_by_compose(instance_yaml, services):
    needed = {v for p, v in _leaves(instance_yaml) if p[-1] == "env"}
    for name in DAGSTER_SERVICES:
        assert needed <= set(_env(services[name])), name


def test_instance_queues_one_run_at_a_time(instance_yaml):
    rc = instance_yaml["run_coordinator"]
    assert rc["class"] == "QueuedRunCoordinator"
    assert rc["config"]["max_concurrent_runs"] == 1


def test_instance_telemetry_and_nux_off(instance_yaml):
    assert instance_yaml["telemetry"] == {"enabled": False}
    assert instance_yaml["nux"] == {"enabled": False}


def test_instance_config_is_valid_for_installed_dagster(tmp_path, monkeypatch):
    """Validate against Dagster's own instance schema; resolves the env vars, no DB needed."""
    pytest.importorskip("dagster")
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes.config_class import class_from_code_pointer

    for k, v in PG_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text(DAGSTER_YAML.read_text())

    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None

    # the env-var credentials resolve (validate_config leaves {env: ...} as is; process_config
    # reads the variables, as the storage classes do when the instance starts)
    from dagster._config import process_config, validate_config
    from dagster._core.storage.config import pg_config

    resolved = process_config(pg_config(), config["storage"]["postgres"])
    assert resolved.success, resolved.errors
    assert resolved.value["postgres_db"]["password"] == "p"
    assert resolved.value["postgres_db"]["hostname"] == "postgres"
    pytest.importorskip("dagster_postgres")
    from dagster_postgres.utils import pg_url_from_config

    assert pg_url_from_config(resolved.value) == "postgresql+psycopg2://u:p@postgres:5432/d"

    # every configurable class named in the file imports, and its config fits its schema

    for key in ("scheduler", "run_coordinator", "run_launcher"):
        entry = config[key]
        cls = class_from_code_pointer(entry["module"], entry["class"])
        if entry.get("config"):
            result = validate_config(cls.config_type(), entry["config"])
            assert result.success, (key, result.errors)

    # the `storage: postgres` block resolves to dagster-postgres's storages (the postgres extra)
    ref = InstanceRef.from_dir(str(tmp_path))
    assert ref.run_storage_data.module_name.startswith("dagster_postgres")
    assert ref.event_storage_data.module_name.startswith("dagster_postgres")
    assert ref.schedule_storage_data.module_name.startswith("dagster_postgres")
    for data in (ref.run_storage_data, ref.event_storage_data, ref.schedule_storage_data):
        class_from_code_pointer(data.module_name, data.class_name)
