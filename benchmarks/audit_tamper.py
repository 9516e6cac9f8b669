"""Tamper evidence, measured: random tamperings of a 500-record audit chain, 200 of each kind in
``tests/audit_tampering.TAMPERINGS`` (edited field, deleted record, swapped records, truncated tail, recomputed-hash
forgery without the key, a record inserted beyond the head or in the middle, details that are not JSON, a bad time,
a dropped records or head table), each on a fresh copy, each verified on the store opened afresh (as the next
``rag audit verify`` opens it: a dropped table is created again, empty). It measures detection; the verification
times are a side note.

Run with ``AUDIT_HMAC_KEY`` set (the production setting) and, for the record, without it: an unsigned chain cannot
tell a full recomputed-hash forgery from the original, which is why the key exists.

    python -m benchmarks.audit_tamper     # writes benchmarks/out/audit_tamper.json
"""

import datetime
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import OUT, write_report
from rag_core.compliance.audit import AuditTrail
from rag_core.compliance.audit_store import HMAC_KEY_VARIABLE, AuditStore
from rag_core.compliance.events import AuditEventType
from rag_core.compliance.integrity import verify_chain
from tests.support.audit_tampering import NAMED_EXACTLY, TAMPERINGS

TRIALS_PER_KIND = 200
RECORDS = 500
SEED = 2026


def pristine(folder: Path) -> Path:
    path = folder / "pristine.db"
    clock = iter(
        datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC) + datetime.timedelta(seconds=i) for i in range(RECORDS)
    )
    trail = AuditTrail(AuditStore(f"sqlite:///{path}", checkpoint_every=50), clock=lambda: next(clock))
    rng = random.Random(SEED)
    types = list(AuditEventType)
    for index in range(RECORDS):
        trail.record(
            rng.choice(types),
            actor=f"user{rng.randint(0, 9)}@cli",
            details={"n": index, "doc_ids": [f"doc{rng.randint(0, 999)}"], "count": rng.randint(0, 100)},
        )
    trail.store.engine.dispose()
    return path


def campaign(folder: Path, source: Path, *, key: str | None) -> dict:
    if key is None:
        os.environ.pop(HMAC_KEY_VARIABLE, None)
    else:
        os.environ[HMAC_KEY_VARIABLE] = key
    rng = random.Random(SEED)
    names = sorted(TAMPERINGS)
    by_kind = {name: {"trials": 0, "detected": 0, "named_exactly": 0} for name in names}
    verify_ms = []
    trials = TRIALS_PER_KIND * len(names)
    for trial in range(trials):
        name = names[trial % len(names)]
        copy = folder / f"trial-{trial}.db"
        shutil.copy(source, copy)
        tampered = AuditStore(f"sqlite:///{copy}")
        touched = TAMPERINGS[name](tampered, rng)
        tampered.engine.dispose()
        store = AuditStore(f"sqlite:///{copy}")
        started = time.perf_counter()
        report = verify_chain(store)
        verify_ms.append((time.perf_counter() - started) * 1000)
        store.engine.dispose()
        copy.unlink()
        counts = by_kind[name]
        counts["trials"] += 1
        counts["detected"] += int(not report.intact)
        counts["named_exactly"] += int(name in NAMED_EXACTLY and report.first_bad_seq == touched)
    detected = sum(c["detected"] for c in by_kind.values())
    return {
        "trials": trials,
        "detected": detected,
        "detection_rate": detected / trials,
        "by_kind": by_kind,
        "verify_ms_p50": round(float(np.percentile(verify_ms, 50)), 2),
        "verify_ms_p95": round(float(np.percentile(verify_ms, 95)), 2),
    }


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="audit-tamper-"))
    try:
        os.environ[HMAC_KEY_VARIABLE] = "benchmark-key"
        source = pristine(folder)
        assert verify_chain(AuditStore(f"sqlite:///{source}")).intact
        signed = campaign(folder, source, key="benchmark-key")
        unsigned_source = folder / "unsigned.db"
        os.environ.pop(HMAC_KEY_VARIABLE)
        shutil.copy(source, unsigned_source)
        unsigned = campaign(folder, unsigned_source, key=None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    write_report(
        OUT / "audit_tamper.json",
        {
            "setup": f"{RECORDS}-record chain (SQLite, checkpoint every 50), {TRIALS_PER_KIND * len(TAMPERINGS)} "
            f"tamperings, {TRIALS_PER_KIND} of each kind, seed {SEED}, each on a fresh copy, then verify_chain "
            "on the store opened afresh",
            "named_exactly_kinds": list(NAMED_EXACTLY),
            "with_key": signed,
            "without_key": unsigned,
            "goal": "100% detected with AUDIT_HMAC_KEY set",
        },
    )


if __name__ == "__main__":
    main()
