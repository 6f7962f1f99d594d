"""Pages a person opens, rendered in headless Chromium with the network cut off: the server's /docs
and /redoc, and `decon review --html` reports (a golden run, and 100k matches)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser_harness import browser_page, is_local, screenshot  # noqa: E402
from report_factory import write_simple_reports  # noqa: E402
from test_server_harness import ServerProcess  # noqa: E402

from decon.cli import main  # noqa: E402
from decon.review.html_data import ordered  # noqa: E402
from decon.review.loader import load_reports  # noqa: E402

pytestmark = pytest.mark.slow  # real clusters, servers or browsers: `make test` runs it, `make test-fast` does not

ENGINE = ["--reference-input", "tests/data/server/reference", "--sample-every-m-tokens", "1", "--no-index-cache"]
GOLDEN = Path(__file__).resolve().parent / "golden"  # upstream's reports (tests/golden/README.md)
SYNTHETIC = GOLDEN / "synthetic-cl100k" / "reports"
EXTERNAL = re.compile(r"(?:https?:)?//(?!127\.0\.0\.1)[a-z0-9.-]+\.[a-z]{2,}", re.I)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServerProcess(ENGINE + ["--worker-threads", "1",
                                   "--report-output-dir", str(tmp_path_factory.mktemp("docs"))])
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.kill()


def external_refs(html: str) -> list[str]:
    """Absolute URLs in src/href attributes or CSS url() of a page."""
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""", html)
    return [u for pair in refs for u in pair if u and EXTERNAL.match(u)]


def test_docs_page_renders_offline(server):
    html = requests.get(f"{server.url}/docs", timeout=10).text
    assert external_refs(html) == [] and "cdn" not in html.lower()
    with browser_page() as (page, urls):
        page.goto(f"{server.url}/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=60_000)
        paths = {p.get_attribute("data-path") or p.inner_text().strip()
                 for p in page.query_selector_all(".opblock-summary-path")}
        page.click("#operations-default-submit_submit_post .opblock-summary")
        page.wait_for_selector(".opblock-body", timeout=10_000)
        shot = screenshot(page, "docs.png")
    assert {"/health", "/submit", "/status/{job_id}", "/metrics"} <= paths
    assert [u for u in urls if not is_local(u)] == []
    assert any(u.endswith("/docs-assets/swagger-ui-bundle.js") for u in urls)
    assert shot.is_file()


def test_redoc_page_renders_offline(server):
    html = requests.get(f"{server.url}/redoc", timeout=10).text
    assert external_refs(html) == [] and "fonts.googleapis" not in html
    with browser_page() as (page, urls):
        page.goto(f"{server.url}/redoc")
        page.wait_for_selector("text=Queue a training file", timeout=60_000)
        screenshot(page, "redoc.png")
    assert [u for u in urls if not is_local(u)] == []


def render_report(reports: Path, out: Path, *extra: str) -> Path:
    assert main(["review", str(reports), "--html", "-o", str(out), *extra]) == 0
    return out


def first_question_span(reports: Path) -> str:
    top = ordered(load_reports(reports))[0]
    found = re.search("【([^】]*)】", top.raw["training_overlap_text"])
    assert found
    return found.group(1).strip()


def test_report_renders_charts_and_matches(tmp_path):
    out = render_report(SYNTHETIC, tmp_path / "report.html")
    html = out.read_text(encoding="utf-8")
    assert external_refs(html) == [] and not re.search(r"https?://", html)
    matches = load_reports(SYNTHETIC)
    with browser_page() as (page, urls):
        page.goto(out.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        bars = page.eval_on_selector_all("#chart-suite-docs g.bar", "gs => gs.map(g => [g.dataset.label, "
                                         "Number(g.dataset.count), g.querySelector('rect').getBBox().width])")
        table = page.eval_on_selector_all("#suite-table tbody tr", "rs => rs.map(r => [r.cells[0].innerText, "
                                          "Number(r.cells[1].innerText)])")
        assert len(page.query_selector_all("#chart-scores g.bar")) > 0
        articles = page.query_selector_all("article.match")
        first_q = page.inner_text("article.match >> nth=0 >> .training mark.q").strip()
        screenshot(page, "report.png")
        suite = "gsm8k"
        page.select_option("#f-suite", label=next(o for o in page.eval_on_selector_all(
            "#f-suite option", "os => os.map(o => o.label)") if o.startswith(suite + " ")))
        shown = {a.get_attribute("data-suite") for a in page.query_selector_all("article.match")}
        status = page.inner_text("#status")
        screenshot(page, "report-filtered.png")
    assert [[label, count] for label, count, _ in bars] == table
    assert all(width > 0 for *_, width in bars)
    assert len(articles) == min(50, len(matches))
    assert first_q == first_question_span(SYNTHETIC)
    assert shown == {suite}
    assert status.endswith(f"of {sum(1 for m in matches if m.suite == suite)} matches")
    assert [u for u in urls if not is_local(u)] == []


def test_report_of_100k_matches_is_small_and_opens(tmp_path):
    reports = write_simple_reports(tmp_path / "reports", 100_000)
    out = render_report(reports, tmp_path / "big.html")
    size = out.stat().st_size
    assert size < 20 * 1024 * 1024, f"{size} bytes"
    with browser_page(height=1000) as (page, urls):
        page.goto(out.as_uri(), timeout=180_000)
        page.wait_for_selector("body[data-ready='1']", timeout=180_000)
        status = page.inner_text("#status")
        first_q = page.inner_text("article.match >> nth=0 >> .training mark.q").strip()
        page.fill("#f-min", "0.99")
        filtered = page.inner_text("#status")
        page.click("#next")
        second_page = page.inner_text("#status")
        screenshot(page, "report-100k.png")
    assert status == "showing 1-50 of 100000 matches"
    assert first_q == first_question_span(reports)
    kept = sum(1 for m in load_reports(reports) if m.contamination_score >= 0.99)
    assert filtered == f"showing 1-50 of {kept} matches"
    assert second_page == f"showing 51-100 of {kept} matches"
    assert [u for u in urls if not is_local(u)] == []
