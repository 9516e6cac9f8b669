"""PII never reaches a log record, an audit record or the query log (issue 9, part 5)."""

import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rag_core.compliance.audit import audit_trail
from rag_core.compliance.events import PII_REDACTIONS_KEY, AuditEventType
from rag_core.observability.query_log import QueryLog, read_query_log
from rag_core.security.pii import Redactor, install_log_redaction, redact
from tests.support.configs import make_config
from tests.support.paths import SCIFACT

# One valid value per kind: the checksums (Luhn, mod-97) pass.
PII = {
    "EMAIL": "jane.doe+rag@example.co.uk",
    "PHONE": "+44 20 7946 0958",
    "CARD": "4111 1111 1111 1111",
    "IBAN": "GB82 WEST 1234 5698 7654 32",
    "IPV4": "192.168.10.24",
    "IPV6": "2001:db8::8a2e:370:7334",
    "SSN": "123-45-6789",
    "NINO": "AB 12 34 56 C",
    "API_KEY": "sk-proj-Ab3dE6gH9jK2mN5pQ8sT",
    "JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "SECRET": "Zk9xQ2mP7vL4nR8sT1wY6bC3dF5gH0jK2Nq",
}


@pytest.mark.parametrize("kind", sorted(PII))
def test_each_kind_is_redacted_and_counted(kind: str) -> None:
    result = redact(f"before {PII[kind]} after")
    assert PII[kind] not in result.text
    assert result.text.startswith("before [") and result.text.endswith("] after")
    assert result.counts == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # fails the Luhn check: an ordinary 16-digit number
        "GB82 WEST 1234 5698 7654 33",  # fails mod-97
        "p < 0.001, 95% CI 1.23-4.56, n = 12345678, in 2019",
        "version 2.3.5 at 12:30:45",
        "3f2a9c1e5b7d4f6a8c0e2b4d6f8a0c2e4b6d8f0a1c3e5",  # a hex digest, as chunk ids are
        "e69284d0cd44478583379421c5cddaa5",  # a query id whose digit run passes the Luhn check
        "semantic_index__v12 and t_9f8e7d6c5b",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text).text == text


def test_pseudonyms_are_stable_per_salt_so_one_person_can_be_followed() -> None:
    first, second, other = Redactor(b"salt-a"), Redactor(b"salt-a"), Redactor(b"salt-b")
    text = "mail jane@example.com"
    assert first.redact(text).text == second.redact(text).text != other.redact(text).text
    assert first.redact("jane@example.com").text != first.redact("john@example.com").text


def test_nested_values_are_redacted_and_keys_kept() -> None:
    value, count = Redactor(b"s").redact_value({"ids": ["a", "bob@example.com"], "nested": {"ip": "10.1.2.3"}, "n": 3})
    assert count == 2 and value["n"] == 3 and value["ids"][0] == "a"
    assert "bob@example.com" not in json.dumps(value) and "10.1.2.3" not in json.dumps(value)


def test_project_log_records_are_redacted_before_any_handler(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    install_log_redaction()  # as every entry point does (CLI, API, HTTP service, Dagster code location)

    file_handler = logging.FileHandler(tmp_path / "app.log")
    logging.getLogger().addHandler(file_handler)
    try:
        with caplog.at_level(logging.INFO):
            logging.getLogger("rag_core.retrieval.engine").info("query from %s", PII["EMAIL"])
            logging.getLogger("rag_assets.defs").warning("card %s", PII["CARD"])
            try:
                raise ValueError(f"token {PII['API_KEY']}")
            except ValueError:
                logging.getLogger("rag_core").exception("failed for %s", PII["IPV4"])
    finally:
        logging.getLogger().removeHandler(file_handler)
        file_handler.close()
    written = (tmp_path / "app.log").read_text() + caplog.text
    for value in (PII["EMAIL"], PII["CARD"], PII["API_KEY"], PII["IPV4"]):
        assert value not in written
    assert "[EMAIL:" in written and "ValueError: token [API_KEY:" in written


def test_audit_details_are_redacted_and_the_redactions_counted(tmp_path: Path) -> None:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"))
    record = audit_trail(config).record(
        AuditEventType.DELETION,
        actor="test",
        details={"doc_id": PII["EMAIL"], "error": f"from {PII['IPV6']}", "rows": 2},
    )
    assert record.details[PII_REDACTIONS_KEY] == 2 and record.details["rows"] == 2
    stored = list(audit_trail(config).store.records())[-1]
    assert PII["EMAIL"] not in json.dumps(stored.details) and PII["IPV6"] not in json.dumps(stored.details)
    clean = audit_trail(config).record(AuditEventType.DELETION, actor="test", details={"doc_id": "readme.md"})
    assert PII_REDACTIONS_KEY not in clean.details


def test_query_log_keeps_only_redacted_text_and_settings(tmp_path: Path) -> None:
    log = QueryLog(tmp_path / "query_log", keep_text=True)
    query = f"refund to {PII['IBAN']} for {PII['EMAIL']}"
    log.record(
        normalised_query=query.lower(),
        query=query,
        query_vector=None,
        mode="bm25",
        settings={"filter": f'doc_id == "{PII["EMAIL"]}"', "top_k": "5"},
        collection="c",
        data_version=1,
        result_ids=["x"],
        result_scores=[1.0],
        latency_ms={"retrieval": 1.0},
        cache_hit=False,
        signals={},
    )
    log.close()
    table = read_query_log(tmp_path / "query_log")
    assert table.num_rows == 1
    raw = b"".join(p.read_bytes() for p in (tmp_path / "query_log").glob("date=*/*.parquet"))
    row = json.dumps(table.to_pylist()[0], default=str)
    for value in (PII["IBAN"], PII["EMAIL"]):
        assert value not in row and value.encode() not in raw
    assert "[IBAN:" in table.column("query_text")[0].as_py()
    assert pq.read_table(next((tmp_path / "query_log").glob("date=*/*.parquet"))).num_rows == 1


@pytest.mark.skipif(not (SCIFACT / "queries.jsonl").is_file(), reason="SciFact is not in ../shared/data")
def test_scifact_queries_are_not_redacted() -> None:
    """Scientific claims are full of numbers, ratios and gene names: none of them is personal data."""
    queries = [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").open()]
    assert len(queries) == 1109
    redacted = [q for q in queries if redact(q).total]
    assert redacted == []
