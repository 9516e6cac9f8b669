"""Milvus authentication, TLS and server RBAC, on the real 2.3.5 server (Milvus Lite has none of them).

One server per module (for the tests marked ``server``, so ``slow``), started with
``common.security.authorizationEnabled`` and mutual TLS (``tlsMode: 2``) under certificates made here with the
openssl CLI.
"""

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_core.config import RAGConfig
from rag_core.index.connection_security import MilvusAuthenticationError, MilvusPermissionError
from rag_core.index.manager import MilvusIndexManager
from tests.support.configs import make_config
from tests.support.corpus import RETRIEVAL_DOCS, ingest
from tests.support.engines import engine_for
from tests.support.milvus_server import MilvusServer, running_server

ROOT_PASSWORD = "Milvus"  # the server's default root password
READER, READER_PASSWORD = "reader", "Reader-pass-1"
READ_PRIVILEGES = {
    "Collection": (
        "Search",
        "Query",
        "Load",
        "GetLoadState",
        "GetLoadingProgress",
        "HasPartition",
        "ShowPartitions",
        "IndexDetail",
        "GetStatistics",
    ),
    "Global": ("DescribeCollection", "ShowCollections", "ListAliases", "DescribeAlias"),
}


def make_certificates(folder: Path) -> Path:
    """A CA, a server certificate for localhost / 127.0.0.1 and a client certificate, both signed by the CA."""
    folder.mkdir()

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
    )
    for name, extension in (
        ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
        )
        (folder / f"{name}.ext").write_text(extension + "\n", encoding="utf-8")
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
        )
    return folder


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certificates(tmp_path_factory.mktemp("tls") / "certs")


@pytest.fixture(scope="module")
def secured_server(tmp_path_factory: pytest.TempPathFactory, certificates: Path) -> Iterator[MilvusServer]:
    settings = {
        "common.security.authorizationEnabled": "true",
        "common.security.tlsMode": "2",
        "tls.serverPemPath": str(certificates / "server.pem"),
        "tls.serverKeyPath": str(certificates / "server.key"),
        "tls.caPemPath": str(certificates / "ca.pem"),
    }
    with running_server(tmp_path_factory.mktemp("milvus-secured"), settings) as server:
        yield server


def secured_config(
    tmp_path: Path, server: MilvusServer, certificates: Path, collection: str = "semantic_index", **milvus: object
) -> RAGConfig:
    tls = {
        "secure": True,
        "server_name": "localhost",
        "ca_pem_path": str(certificates / "ca.pem"),
        "client_pem_path": str(certificates / "client.pem"),
        "client_key_path": str(certificates / "client.key"),
        "user": "root",
        "password": ROOT_PASSWORD,
        "consistency_level": "Strong",
    }
    return make_config(
        tmp_path,
        f"https://127.0.0.1:{server.port}",
        collection,
        milvus={**tls, **milvus},
        retrieval={"bm25_refresh_s": 0},
    )


def failure(config: RAGConfig) -> str:
    manager = MilvusIndexManager(config.milvus, config.index)
    with pytest.raises(MilvusAuthenticationError) as error:
        manager.client  # noqa: B018 - connecting is the act under test
    return str(error.value)


@pytest.mark.server
def test_correct_credentials_and_certificates_work(
    tmp_path: Path, secured_server: MilvusServer, certificates: Path
) -> None:
    report = MilvusIndexManager(secured_config(tmp_path, secured_server, certificates).milvus).health()
    assert report.ok, report.error
    assert report.server_version.startswith("v2.3")


@pytest.mark.server
def test_wrong_password_names_the_uri_and_the_credentials(
    tmp_path: Path, secured_server: MilvusServer, certificates: Path
) -> None:
    config = secured_config(tmp_path, secured_server, certificates, password="not-the-password")
    message = failure(config)
    assert config.milvus.uri in message
    assert "refused the credentials of user 'root'" in message and "MILVUS_PASSWORD" in message


@pytest.mark.server
def test_missing_client_certificate_says_which_setting(
    tmp_path: Path, secured_server: MilvusServer, certificates: Path
) -> None:
    config = secured_config(tmp_path, secured_server, certificates, client_pem_path="", client_key_path="")
    message = failure(config)
    assert config.milvus.uri in message and "requires a client certificate" in message
    assert "milvus.client_pem_path" in message


@pytest.mark.server
def test_missing_ca_and_plain_connection_say_what_to_check(
    tmp_path: Path, secured_server: MilvusServer, certificates: Path
) -> None:
    untrusted = failure(secured_config(tmp_path, secured_server, certificates, ca_pem_path=""))
    assert "does not trust" in untrusted and "milvus.ca_pem_path" in untrusted
    # Another password than the working connections', so pymilvus cannot hand this client one of theirs.
    plain = secured_config(
        tmp_path,
        secured_server,
        certificates,
        secure=False,
        ca_pem_path="",
        client_pem_path="",
        client_key_path="",
        password="another-password",
    )
    plain.milvus.uri = f"http://127.0.0.1:{secured_server.port}"
    assert "only accepts TLS" in failure(plain)


@pytest.mark.server
def test_read_only_user_can_query_but_not_write(
    tmp_path: Path, secured_server: MilvusServer, certificates: Path, embedder
) -> None:
    alias = f"t_{uuid.uuid4().hex[:10]}"
    admin = secured_config(tmp_path, secured_server, certificates, alias)
    ingest(admin, RETRIEVAL_DOCS, embedder)
    root = MilvusIndexManager(admin.milvus, admin.index).client
    if READER not in root.list_users():
        root.create_user(READER, READER_PASSWORD)
        root.create_role("read_only")
        for object_type, privileges in READ_PRIVILEGES.items():
            for privilege in privileges:
                root.grant_privilege("read_only", object_type, privilege, "*")
        root.grant_role(READER, "read_only")

    reader = secured_config(
        tmp_path / "reader", secured_server, certificates, alias, user=READER, password=READER_PASSWORD
    )
    result = engine_for(reader, embedder=embedder).search("How does HNSW search work?")
    assert result.results and result.results[0].doc_id == "hnsw"

    manager = MilvusIndexManager(reader.milvus, reader.index)
    collection = manager.resolve(alias)
    with pytest.raises(MilvusPermissionError) as error:
        manager.delete_chunks(collection, ["any-chunk"])
    message = str(error.value)
    assert reader.milvus.uri in message and f"user '{READER}'" in message and "PrivilegeDelete" in message
    assert manager.count(collection) > 0


@pytest.mark.parametrize("setting", [{"user": "root", "password": ROOT_PASSWORD}, {"secure": True}])
def test_milvus_lite_warns_that_it_ignores_security_settings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, setting: dict
) -> None:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"), milvus=setting)
    manager = MilvusIndexManager(config.milvus, config.index)
    assert manager.health().ok  # Lite accepts anything: it is no proof of security
    manager.close()
    assert "has no users, roles or TLS" in caplog.text
