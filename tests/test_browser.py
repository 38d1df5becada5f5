"""A real browser looks at the demo's reports: headless Chromium opens outputs/index.html,
follows a link to the monthly review, checks that its plots rendered as images, and saves
screenshots in test-artifacts/ (skipped, with the reason, where no Chromium can start)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.demo import DemoRun


def _images(page: Any) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(
        "img",
        "els => els.map(e => ({src: e.src.slice(0, 40), complete: e.complete, "
        "width: e.naturalWidth, height: e.naturalHeight}))",
    )


@pytest.mark.browser
@pytest.mark.postgres
@pytest.mark.slow
def test_index_links_to_a_monthly_review_whose_plots_render(
    demo_run: DemoRun, browser_page: Any, artifacts_dir: Path
) -> None:
    page = browser_page
    index = demo_run.outputs / "index.html"
    page.goto(index.as_uri())
    assert page.title() == "lsops reports"
    for kind in ("monthly-review", "db-optimization", "postmortem"):
        assert page.locator(f"a[href^='{kind}/'][href$='report.html']").count() >= 1, kind
    page.screenshot(path=str(artifacts_dir / "demo-index.png"), full_page=True)

    link = page.locator("a[href^='monthly-review/'][href$='report.html']").first
    href = link.get_attribute("href")
    link.click()
    page.wait_for_load_state("load")
    assert page.url.endswith(href), (page.url, href)
    page.wait_for_function(
        "() => Array.from(document.images).every(i => i.complete)", timeout=15_000
    )
    images = _images(page)
    assert len(images) >= 4, images  # latency, daily trends, memory, endpoints, database
    broken = [i for i in images if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
    assert broken == [], broken
    text = page.inner_text("body")
    assert "runbook targets met" in text
    assert "no_answer" in text or "no answer" in text
    page.screenshot(path=str(artifacts_dir / "demo-monthly-review.png"), full_page=True)
    assert (artifacts_dir / "demo-monthly-review.png").stat().st_size > 10_000


@pytest.mark.browser
@pytest.mark.postgres
@pytest.mark.slow
def test_every_report_s_headings_descend_one_level_at_a_time(
    demo_run: DemoRun, browser_page: Any
) -> None:
    """A screen reader walks a report by its headings: no level is skipped on the way
    down (QA 23: every report went from a section's h2 to its tables' h4)."""
    page = browser_page
    for html in sorted(demo_run.outputs.glob("*/*/*/report.html")):
        page.goto(html.as_uri())
        levels = page.eval_on_selector_all(
            "h1, h2, h3, h4, h5, h6", "els => els.map(e => Number(e.tagName[1]))"
        )
        assert len(levels) > 5, (html, levels)
        skips = [(a, b) for a, b in zip(levels, levels[1:], strict=False) if b > a + 1]
        assert skips == [], (html.relative_to(demo_run.outputs), skips)
