"""The alert rules and Prometheus configs, checked by Debian's promtool: rules and configs parse, every alert fires
past the guide's threshold and stays quiet within it (deploy/prometheus/alerts.test.yml), and those unit tests
notice when a threshold is changed."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.paths import REPO

ROOT = REPO
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
OBSERVABILITY_DOC = ROOT / "docs" / "observability.md"
GUIDE = ROOT.parent / "shared" / "seed" / "operations-guide.md"
# Each alert's threshold as alerts.yml writes it, and a value on the wrong side of the unit tests' data.
THRESHOLDS = {
    "RagRetrievalLatencyP95High": ("> 0.1\n", "> 0.25\n"),
    "RagHallucinationRiskHigh": ("> 0.2\n", "> 0.35\n"),
    "RagFaithfulnessLow": ("< 0.7\n", "< 0.45\n"),
    "RagServiceDown": ('up{job="rag-pipeline"} == 0\n', 'up{job="rag-pipeline"} == 2\n'),
    "RagQueryErrorRateHigh": ("> 0.05\n", "> 0.15\n"),
    "RagDriftDetected": ("> 0.15\n", "> 0.35\n"),
    "RagBatchRunFailed": ("rag_batch_success == 0\n", "rag_batch_success == 2\n"),
}


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: apt-get install -y prometheus (make test does)"
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def guide_prometheus_yml(text: str) -> str:
    """The first ```yaml block that starts with ``# prometheus.yml``."""
    match = re.search(r"```yaml\n(# prometheus\.yml\n.*?)```", text, re.S)
    assert match, "no ```yaml block starting with '# prometheus.yml'"
    return match.group(1)


def test_rules_and_the_shipped_config_pass_promtool_checks() -> None:
    rules = promtool("check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(THRESHOLDS)} rules found" in rules.stdout
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    scrape = {
        job["job_name"]: job
        for job in yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["scrape_configs"]
    }
    assert scrape["rag-pipeline"]["static_configs"][0]["targets"] == ["rag-serve:9090"]
    assert scrape["pushgateway"]["honor_labels"] is True, "pushed metrics keep their job label (rag_ingestion, ...)"


def test_every_alert_fires_past_its_threshold_and_stays_quiet_within_it() -> None:
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    tested = yaml.safe_load((PROMETHEUS_DIR / "alerts.test.yml").read_text())["tests"]
    cases = [case for group in tested for case in group["alert_rule_test"]]
    for alert in THRESHOLDS:
        assert any(c["alertname"] == alert and c["exp_alerts"] for c in cases), f"{alert} is never seen firing"
        assert any(c["alertname"] == alert and not c["exp_alerts"] for c in cases), f"{alert} is never seen quiet"


@pytest.mark.parametrize("alert", THRESHOLDS)
def test_the_unit_tests_catch_a_moved_threshold(alert: str, tmp_path: Path) -> None:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    rule = next(r for group in rules["groups"] for r in group["rules"] if r["alert"] == alert)
    written, moved = THRESHOLDS[alert]
    expression = rule["expr"] if rule["expr"].endswith("\n") else rule["expr"] + "\n"
    assert expression.count(written) == 1, f"{alert}: expected {written!r} in {rule['expr']!r}"
    rule["expr"] = expression.replace(written, moved)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    shutil.copy(PROMETHEUS_DIR / "alerts.test.yml", tmp_path)
    result = promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)
    report = result.stdout + result.stderr
    assert result.returncode != 0 and f"alertname: {alert}," in report, report


def test_the_guides_prometheus_yml_passes_promtool_as_shown(tmp_path: Path) -> None:
    snippet = guide_prometheus_yml(OBSERVABILITY_DOC.read_text(encoding="utf-8"))
    assert "job_name: 'rag-pipeline'" in snippet and "localhost:9090" in snippet
    (tmp_path / "prometheus.yml").write_text(snippet)
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_quote_the_guides_prometheus_yml_verbatim() -> None:
    if not GUIDE.is_file():
        pytest.skip(f"the operations guide is not at {GUIDE}")
    assert guide_prometheus_yml(OBSERVABILITY_DOC.read_text(encoding="utf-8")) == guide_prometheus_yml(
        GUIDE.read_text(encoding="utf-8")
    )
