"""Static checks of the Docker deployment files (no Docker needed).

docker-compose.yml, Dockerfile and deploy/dagster.yaml are what a user runs with
`docker compose up`; these tests pin the parts that the pipeline relies on: the Milvus
version and its health check, where the Dagster services find Milvus and PostgreSQL,
and that the Dagster instance config is valid for the installed Dagster.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DAGSTER_YAML = ROOT / "deploy" / "dagster.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"

DAGSTER_SERVICES = ("dagster-webserver", "dagster-daemon")
PG_ENV = {
    "DAGSTER_POSTGRES_USER": "u",
    "DAGSTER_POSTGRES_PASSWORD": "p",
    "DAGSTER_POSTGRES_HOST": "postgres",
    "DAGSTER_POSTGRES_DB": "d",
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
    return {str(p).split(":")[0] for p in service.get("ports", []) if ":" in str(p)}


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


def test_data_and_docs_are_mounted(services):
    for name in DAGSTER_SERVICES:
        mounts = [str(v) for v in services[name]["volumes"]]
        data = [m for m in mounts if m.split(":")[1] == "/opt/dagster/app/data"]
        assert data, (name, mounts)
        docs = [m for m in mounts if m.split(":")[1] == "/opt/dagster/app/docs"]
        assert docs and docs[0].endswith(":ro"), (name, mounts)
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
    for path in ("pyproject.toml", "README.md", "rag_core", "rag_assets", "workspace.yaml",
                 "config.template.yaml", "docs"):
        assert path in copied, path
    assert ("COPY", "deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml") in dockerfile


def test_dockerfile_default_command_is_the_webserver(dockerfile):
    cmd = [args for instr, args in dockerfile if instr == "CMD"][-1]
    assert yaml.safe_load(cmd)[:1] == ["dagster-webserver"]


def test_dockerignore_keeps_local_state_out():
    entries = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    for entry in (".venv", "data", ".dagster", "volumes", ".git"):
        assert entry in entries, entry
    assert any("__pycache__" in e for e in entries)
    # nothing the Dockerfile copies may be ignored
    for needed in ("deploy", "docs", "rag_core", "rag_assets", "workspace.yaml"):
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

    assert pg_url_from_config(resolved.value) == "postgresql://u:p@postgres:5432/d"

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
