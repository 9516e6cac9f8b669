"""The Dagster UI, the main way this product is used, opened in a real browser: Playwright drives Debian's headless
chromium (no browser download) against `dagster dev` on this repository's workspace.yaml.

One test walks what a user does on a fresh instance: materialize the ingestion group from its asset graph, read
``semantic_index``'s metadata and checks, find every schedule and sensor with its description, and run a query
from the launchpad. Names and descriptions come from the Definitions object, so the test follows the code.

Screenshots of each step go to ``tmp_path/screenshots``; with ``RAG_UI_SCREENSHOTS=docs/img`` the materialized
asset graph is also copied to ``docs/img/asset-graph.png`` (the README's picture).
"""

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect, sync_playwright

from rag_assets.definitions import build_definitions
from rag_assets.defs.ingestion.assets import semantic_index
from rag_assets.defs.retrieval.jobs import answer_query, query_job
from tests.support.configs import make_config
from tests.support.dagster_dev import REPO, Webserver, running_dagster_dev

pytestmark = pytest.mark.slow

SCREENSHOTS_ENV = "RAG_UI_SCREENSHOTS"
LOCATION = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"][0]["python_module"]["location_name"]
RUN_S, UI_WAIT_MS = 180, 30_000
DOCS = {
    "compaction.md": "# Compaction\n\nCompaction merges small segments and purges deleted rows from collections.",
    "retention.md": "# Retention\n\nRetention policies delete audit records older than the configured days.",
}
QUERY = "how are deleted rows purged?"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
UNFINISHED = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}
LATEST_MATERIALIZATION = """query($path: [String!]!) { assetOrError(assetKey: {path: $path}) { ... on Asset {
  assetMaterializations(limit: 1) { runId metadataEntries { label __typename
    ... on TextMetadataEntry { text } ... on IntMetadataEntry { intValue } ... on BoolMetadataEntry { boolValue }
    ... on PathMetadataEntry { path } } } } } }"""
RUN = """query($runId: ID!) { runOrError(runId: $runId) { ... on Run { jobName status assetSelection { path } } } }"""

expect.set_options(timeout=UI_WAIT_MS)  # Playwright's 5 s default is short for a page rendered on 2 busy cores


@dataclass(frozen=True)
class DagsterUI:
    server: Webserver
    definitions: dg.Definitions
    screenshots: Path

    def shot(self, page: Page, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        page.screenshot(path=path)
        return path

    def wait_until_idle(self) -> None:
        """Until no run is queued or in progress: the corpus sensor's own ingestion run may follow the UI's."""
        deadline = time.monotonic() + RUN_S
        while any(r["status"] in UNFINISHED for r in self.server.runs()):
            assert time.monotonic() < deadline, f"Runs still unfinished after {RUN_S} s: {self.server.runs()}"
            time.sleep(2)


@pytest.fixture
def dagster_ui(tmp_path: Path) -> Iterator[DagsterUI]:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text)
    config = make_config(tmp_path, str(tmp_path / "milvus.db"), quality={"reports_dir": str(tmp_path / "reports")})
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    screenshots = tmp_path / "screenshots"
    screenshots.mkdir()
    # MILVUS_URI too: the guide's variable outranks the file, and the checkout's data/milvus.db must stay untouched.
    with running_dagster_dev(tmp_path, {"RAG_CONFIG": str(config_file), "MILVUS_URI": config.milvus.uri}) as server:
        yield DagsterUI(server, build_definitions(config), screenshots)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is not installed: apt-get install chromium (make test installs it)."
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1600, "height": 900})
    context.set_default_timeout(UI_WAIT_MS)
    yield context.new_page()
    context.close()


def wait_for_run_page(page: Page, ui: DagsterUI) -> dict:
    """On a run's page: wait until its status tag shows the run ended, and require success over GraphQL (a failed
    run fails here at once, with its status, rather than after the whole wait)."""
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    run_id = page.url.split("/runs/")[1].split("?")[0]
    ended = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    expect(ended).to_be_visible(timeout=RUN_S * 1000)
    run = ui.server.graphql(RUN, runId=run_id)["runOrError"]
    assert run["status"] == "SUCCESS", run
    return run


def displayed_value(entry: dict) -> str | None:
    """How the UI prints a metadata entry's value, where that is plain text (floats are rounded: label only)."""
    if "boolValue" in entry:
        return str(entry["boolValue"]).lower()
    return next((str(entry[field]) for field in ("text", "intValue", "path") if field in entry), None)


def test_a_user_materializes_inspects_and_queries_from_the_dagster_ui(dagster_ui: DagsterUI, page: Page) -> None:
    ui, url = dagster_ui, dagster_ui.server.url
    graph = ui.definitions.resolve_asset_graph()
    index_key = semantic_index.key
    group = graph.get(index_key).group_name
    group_assets = [key for key in graph.get_all_asset_keys() if graph.get(key).group_name == group]

    # The asset graph of semantic_index's group, then "Materialize all" and the run it launched.
    page.goto(f"{url}/locations/{LOCATION}/asset-groups/{group}")
    for key in group_assets:
        expect(page.get_by_text(key.to_user_string(), exact=True).first).to_be_visible()
    ui.shot(page, "01-asset-graph")
    page.get_by_role("button", name="Materialize all").click()
    toast = page.get_by_text(re.compile(r"^Launched run [0-9a-f]{8}$"))
    expect(toast).to_be_visible()
    # The toast names the run by its id's first 8 characters, and fades within seconds: open its page by id.
    prefix = toast.inner_text().split()[-1]
    ui.shot(page, "02-materialize-all-launched")
    launched = [r["runId"] for r in ui.server.runs() if r["runId"].startswith(prefix)]
    assert len(launched) == 1, (prefix, ui.server.runs())
    page.goto(f"{url}/runs/{launched[0]}")
    materialized = wait_for_run_page(page, ui)["assetSelection"]
    assert sorted(a["path"] for a in materialized) == sorted(key.path for key in group_assets), materialized
    ui.shot(page, "03-materialize-all-run")

    ui.wait_until_idle()
    page.goto(f"{url}/locations/{LOCATION}/asset-groups/{group}")
    expect(page.get_by_text("Materialized", exact=True)).to_have_count(len(group_assets))
    graph_png = ui.shot(page, "04-asset-graph-materialized")
    if os.environ.get(SCREENSHOTS_ENV):
        target = REPO / os.environ[SCREENSHOTS_ENV]
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(graph_png, target / "asset-graph.png")

    # semantic_index: every metadata entry of its latest materialization, as the event log holds it.
    page.goto(f"{url}/assets/{'/'.join(index_key.path)}")
    latest = ui.server.graphql(LATEST_MATERIALIZATION, path=index_key.path)["assetOrError"]["assetMaterializations"]
    assert latest, "semantic_index has no materialization after the run succeeded"
    for entry in latest[0]["metadataEntries"]:
        row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=entry["label"], exact=True))
        expect(row).to_be_visible()
        if (shown := displayed_value(entry)) is not None:
            expect(row).to_contain_text(shown)
    ui.shot(page, "05-semantic-index-metadata")

    checks = sorted(key.name for key in graph.asset_check_keys if key.asset_key == index_key)
    assert checks, "semantic_index has no asset checks in the Definitions"
    page.get_by_role("tab", name="Checks").click()
    for name in checks:
        page.get_by_title(name, exact=True).click()
        expect(page.get_by_text(name, exact=True).filter(visible=True)).to_be_visible()
        expect(page.get_by_text("Passed", exact=True)).to_be_visible()
        ui.shot(page, f"06-check-{name}")

    # Every schedule and sensor, listed on its page and shown with its description on its own page.
    for kind, definitions in (("schedules", ui.definitions.schedules), ("sensors", ui.definitions.sensors)):
        assert definitions, f"No {kind} in the Definitions"
        page.goto(f"{url}/locations/{LOCATION}/{kind}")
        links = {d.name: page.locator(f'a[href="/locations/{LOCATION}/{kind}/{d.name}"]') for d in definitions}
        for link in links.values():
            expect(link).to_be_visible()
        ui.shot(page, f"07-{kind}")
        for definition in definitions:
            page.goto(f"{url}/locations/{LOCATION}/{kind}")
            links[definition.name].click()
            row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="Description", exact=True))
            expect(row.get_by_role("cell").nth(1)).to_have_text(definition.description)
        ui.shot(page, f"08-{kind}-{definitions[-1].name}")

    # The query job from its launchpad: the config typed into the editor, launched, answered from the index.
    page.goto(f"{url}/locations/{LOCATION}/jobs/{query_job.name}/playground")
    page.locator(".CodeMirror").first.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(yaml.safe_dump({"ops": {answer_query.name: {"config": {"query": QUERY, "top_k": 2}}}}))
    launch = page.get_by_role("button", name="Launch Run")
    expect(launch).to_be_enabled()
    ui.shot(page, "09-launchpad")
    launch.click()
    assert wait_for_run_page(page, ui)["jobName"] == query_job.name
    page.get_by_text("[Show Markdown]").first.click()
    results = page.get_by_role("dialog").get_by_role("row")
    expect(results.nth(1)).to_contain_text("compaction.md")
    ui.shot(page, "10-query-run")
