"""Does PII reach a log file, an audit record or a query-log row? And how often is ordinary text redacted?

A seeded set of documents and queries carries every kind of PII the redactor knows (valid checksums: Luhn cards,
mod-97 IBANs). They go through the Python API (ingest, retrieve with and without a filter quoting an e-mail
address, delete) and the CLI (``rag query``, ``rag erase`` of a document whose id and file name are an e-mail
address, whose source file is left in place so a warning names it), with the query text kept in the query log
(``quality.log_query_text``: the worst case) and every project log record written to a file at DEBUG. Then every
log file, every row of every audit-database table and every query-log row is searched for each seeded value (as
written, and with spaces and dashes removed). The redaction markers found there show the PII did reach the
writers and was redacted on the way. False redactions: SciFact's 1,109 queries (and, for scale, its 5,183
documents) through the same redactor.

    python -m benchmarks.pii_redaction     # writes benchmarks/out/pii_redaction.json
"""

import asyncio
import base64
import gzip
import json
import logging
import random
import re
import sqlite3
import string
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks.offline import SCIFACT
from benchmarks.report import OUT, write_report
from rag_core.api import AdvancedRAGPipeline
from rag_core.config import RAGConfig
from rag_core.lifecycle.compliance_manager import ComplianceManager
from rag_core.security.pii import redact

SEED = 20261126
DOCUMENTS = 24
QUERIES = 120
CLI_QUERIES = 3
MARKER = re.compile(r"\[([A-Z0-9_]+):[0-9a-f]{10}\]")


def luhn_complete(prefix: str) -> str:
    total = 0
    for i, char in enumerate(reversed(prefix)):
        value = int(char) * (1 if i % 2 else 2)
        total += value - 9 if value > 9 else value
    return prefix + str((10 - total % 10) % 10)


def iban(rng: random.Random) -> str:
    bban = "WEST" + "".join(rng.choices(string.digits, k=14))
    check = 98 - int("".join(str(int(c, 36)) for c in bban + "GB00")) % 97
    compact = f"GB{check:02d}{bban}"
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def seeded_values(rng: random.Random) -> dict[str, str]:
    """One fresh value of every kind."""
    alnum = string.ascii_letters + string.digits
    first, last = rng.choice(["jane", "omar", "li", "ana", "kofi"]), rng.choice(["doe", "roe", "smith", "ng"])
    card = luhn_complete("4" + "".join(rng.choices(string.digits, k=14)))
    secret = "".join(rng.choices(alnum, k=36)) + "aZ9"
    token = "".join(rng.choices(string.ascii_uppercase + string.digits, k=36))
    return {
        "EMAIL": f"{first}.{last}{rng.randint(1, 999)}@example.org",
        "PHONE": rng.choice(
            [f"+44 20 7946 {rng.randint(1000, 9999)}", f"(555) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}"]
        ),
        "CARD": " ".join(card[i : i + 4] for i in range(0, 16, 4)),
        "IBAN": iban(rng),
        "IPV4": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "IPV6": f"2001:db8::{rng.randint(1, 0xFFFF):x}:{rng.randint(1, 0xFFFF):x}",
        "SSN": f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
        "NINO": f"{rng.choice('ACEHJKLMPRSTWXYZ')}{rng.choice('ACEHJKLMPRSTWXYZ')} {rng.randint(10, 99)} "
        f"{rng.randint(10, 99)} {rng.randint(10, 99)} {rng.choice('ABCD')}",
        "API_KEY": rng.choice([f"sk-proj-{token}", f"ghp_{token}", f"AKIA{token[:16]}"]),
        "JWT": ".".join(
            [b64(b'{"alg":"HS256","typ":"JWT"}'), b64(json.dumps({"sub": first}).encode() * 2), b64(rng.randbytes(32))]
        ),
        "SECRET": secret,
    }


def forms(value: str) -> set[str]:
    """How a value could appear: as written, and without the spaces and dashes that group it."""
    return {value, re.sub(r"[ -]", "", value)}


def run_cli(args: list[str], config_file: Path, log: Path) -> int:
    with log.open("a") as stderr:
        return subprocess.run(
            [sys.executable, "-m", "rag_core.cli", *args, "--config", str(config_file)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            check=False,
        ).returncode


def exercise(work: Path, rng: random.Random) -> tuple[list[str], dict[str, int]]:
    """Run the seeded documents and queries through the API and the CLI; returns every seeded value."""
    config = RAGConfig.model_validate(
        {
            "milvus": {"uri": str(work / "milvus.db"), "consistency_level": "Strong"},
            "ingestion": {"docs_dir": str(work / "docs"), "storage_dir": str(work / "assets")},
            "retrieval": {"bm25_dir": str(work / "bm25"), "metrics_dir": str(work / "metrics"), "bm25_refresh_s": 0},
            "quality": {
                "query_log_dir": str(work / "query_log"),
                "log_query_text": True,
                "drift_dir": str(work / "drift"),
            },
            "compliance": {"database_url": f"sqlite:///{work / 'audit.db'}", "reports_dir": str(work / "reports")},
        }
    )
    config_file = work / "config.yaml"
    config_file.write_text(config.model_dump_json(context={"secrets": True}))
    seeded: list[str] = []
    documents = []
    for i in range(DOCUMENTS):
        values = seeded_values(rng)
        seeded += values.values()
        doc_id = f"contact-{values['EMAIL']}" if i % 3 == 0 else f"record-{i}"
        documents.append(
            {
                "id": doc_id,
                "title": f"Customer record {i}",
                "text": (
                    f"Customer record {i}. Reach the customer at {values['EMAIL']} or "
                    f"{values['PHONE']}. Paid with card "
                    f"{values['CARD']}, refunds to {values['IBAN']}. Last login from {values['IPV4']} "
                    f"and {values['IPV6']}. "
                    f"SSN {values['SSN']}, NI number {values['NINO']}. Leaked key {values['API_KEY']}, session "
                    f"{values['JWT']}, password {values['SECRET']}."
                ),
            }
        )
    calls = Counter()
    # The CLI first: Milvus Lite serves one process at a time, and this one holds the file once the API ran.
    folder = work / "incoming"
    folder.mkdir()
    file_id = f"{seeded_values(rng)['EMAIL']}.txt"
    seeded.append(file_id.removesuffix(".txt"))
    (folder / file_id).write_text("Notes about the customer.\n")
    calls["cli_failures"] += run_cli(["ingest", str(folder)], config_file, work / "cli.log") != 0
    for _ in range(CLI_QUERIES):
        values = seeded_values(rng)
        seeded += values.values()
        calls["cli_failures"] += (
            run_cli(["query", f"card {values['CARD']} owner {values['EMAIL']}"], config_file, work / "cli.log") != 0
        )
        calls["cli_queries"] += 1
    calls["cli_failures"] += run_cli(["erase", "--doc-id", file_id], config_file, work / "cli.log") != 0
    calls["cli_erasures"] += 1
    pipeline = AdvancedRAGPipeline(config)
    asyncio.run(pipeline.ingest_documents(documents))
    calls["api_ingested_documents"] = len(documents)
    for i in range(QUERIES):
        values = seeded_values(rng)
        seeded += values.values()
        kinds = rng.sample(sorted(values), 2)
        query = f"which customer has {values[kinds[0]]} and {values[kinds[1]]}"
        filter = f'doc_id != "{values["EMAIL"]}"' if i % 4 == 0 else ""
        asyncio.run(pipeline.retrieve(query, filter=filter))
        calls["api_queries"] += 1
    asyncio.run(pipeline.delete_documents([documents[0]["id"]]))
    calls["api_deletes"] += 1
    ComplianceManager(config).erase_document(documents[3]["id"], engine=pipeline.engine)
    calls["api_erasures"] += 1
    pipeline.engine.query_log.close()
    return seeded, dict(calls)


def scan(texts: list[str], seeded: list[str]) -> dict[str, object]:
    """Seeded values found in ``texts`` (must be 0), and the redaction markers found instead, by kind."""
    joined = "\n".join(texts)
    leaks = sorted({v for value in seeded for v in forms(value) if v in joined})
    return {
        "records": len(texts),
        "pii_strings_found": len(leaks),
        "examples": leaks[:5],
        "redaction_markers": dict(Counter(MARKER.findall(joined))),
    }


def audit_rows(database: Path) -> list[str]:
    connection = sqlite3.connect(database)
    try:
        tables = [r[0] for r in connection.execute("select name from sqlite_master where type = 'table'")]
        return [json.dumps(row, default=str) for t in tables for row in connection.execute(f'select * from "{t}"')]
    finally:
        connection.close()


def query_log_rows(folder: Path) -> list[str]:
    return [
        json.dumps(row, default=str)
        for path in sorted(folder.glob("date=*/*.parquet"))
        for row in pq.read_table(path).drop_columns(["query_vector"]).to_pylist()
    ]


def false_redactions() -> dict[str, object]:
    queries = [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").open()]
    redacted = [(q, redact(q)) for q in queries]
    hits = [(q, r) for q, r in redacted if r.total]
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt") as corpus:
        documents = [json.loads(line) for line in corpus]
    by_kind: Counter[str] = Counter()
    touched = 0
    for document in documents:
        result = redact(f"{document.get('title', '')} {document['text']}")
        by_kind.update(result.counts)
        touched += bool(result.total)
    return {
        "queries": len(queries),
        "queries_redacted": len(hits),
        "query_examples": [{"query": q, "redacted": r.text} for q, r in hits[:5]],
        "documents": len(documents),
        "documents_with_a_redaction": touched,
        "document_redactions_by_kind": dict(by_kind),
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="pii-redaction-"))
    handler = logging.FileHandler(work / "api.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("rag_core", "rag_assets"):
        logging.getLogger(name).setLevel(logging.DEBUG)
        logging.getLogger(name).addHandler(handler)
    seeded, calls = exercise(work, random.Random(SEED))
    handler.close()
    logs = [line for path in sorted(work.glob("*.log")) for line in path.read_text().splitlines()]
    locations = {
        "log_files": scan(logs, seeded),
        "audit_database": scan(audit_rows(work / "audit.db"), seeded),
        "query_log": scan(query_log_rows(work / "query_log"), seeded),
    }
    figures = {
        "seed": SEED,
        "seeded_values": len(set(seeded)),
        "kinds": sorted(seeded_values(random.Random(0))),
        "calls": calls,
        "locations": locations,
        "pii_strings_found": sum(loc["pii_strings_found"] for loc in locations.values()),
        "scifact": false_redactions(),
    }
    write_report(OUT / "pii_redaction.json", figures)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
