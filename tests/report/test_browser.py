"""The report in a real browser: Debian's chromium, headless, through Playwright.

The test fails on any console message of level error or warning, on any uncaught page error and
on any request that leaves the file (a report must be readable offline), and checks that the
browser laid the page out: the timelines have a size and their marks are there. Set
``HARNESS_SCREENSHOT=PATH`` to keep the screenshot (``docs/report.png`` is made that way).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

CHROMIUM = os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Visit:
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    timeline_heights: list[float] = field(default_factory=list)
    rings: int = 0
    first_heading: str = ""


def visit(path: Path, profile: Path, screenshot: Path | None = None) -> Visit:
    """Open ``path`` in headless chromium and report what the browser said and drew."""
    # tests/system_packages.txt lists chromium; without it this fails, it never skips
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: apt-get install chromium"
    seen = Visit()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            viewport={"width": 1150, "height": 900},
        )
        try:
            page = context.new_page()
            _listen(page, seen)
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            seen.timeline_heights = page.eval_on_selector_all(
                "svg.timeline", "nodes => nodes.map(n => n.getBoundingClientRect().height)"
            )
            seen.rings = page.locator("g.violation").count()
            headings = page.locator("section.run h2")
            seen.first_heading = headings.first.inner_text() if headings.count() else ""
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=False)
        finally:
            context.close()
    return seen


def _listen(page: Page, seen: Visit) -> None:
    def console(message: object) -> None:
        kind = getattr(message, "type", "")
        if kind in ("error", "warning"):
            seen.problems.append(f"{kind}: {getattr(message, 'text', '')}")

    page.on("console", console)
    page.on("pageerror", lambda error: seen.problems.append(f"page error: {error}"))
    page.on("request", lambda request: seen.requests.append(request.url))


def test_the_report_renders_in_chromium_without_errors(journal: Path, tmp_path: Path) -> None:
    report = journal.parent / "r.html"
    keep = os.environ.get("HARNESS_SCREENSHOT")
    shot = Path(keep) if keep else tmp_path / "report.png"
    seen = visit(report, tmp_path / "profile", shot)
    assert seen.problems == []
    assert seen.requests == [report.as_uri()]  # nothing fetched beyond the file itself
    assert len(seen.timeline_heights) == 2 and all(h > 100 for h in seen.timeline_heights)
    assert seen.rings == 4
    assert seen.first_heading.startswith("failed")
    assert shot.stat().st_size > 10_000


def test_a_page_with_a_script_error_or_a_fetch_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="http://127.0.0.1:9/x.css">'
        "</head><body><script>no_such_function()</script></body></html>"
    )
    seen = visit(page, tmp_path / "profile")
    assert any("no_such_function" in p for p in seen.problems)
    assert "http://127.0.0.1:9/x.css" in seen.requests


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # the driver talks to the browser over a local pipe; keep proxies out of it
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
