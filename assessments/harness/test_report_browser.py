"""The report in a real browser: headless Chromium loads every page of a built report and finds no
broken image or link, no console error, and every requirement page one click from the index.

Drives Debian's /usr/bin/chromium through playwright's driver (no browser download); skipped, with
the install step, where either is missing. A screenshot of the index goes to
<run-dir>/artifacts/browser/index.png.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from assessments.harness._helpers import make_report_inputs
from reports.build import build_report
from reports.gate import write_baseline

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync"]
BROKEN_IMAGES = "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
LINKS = "Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"
IDS = "Array.from(document.querySelectorAll('[id]')).map(e => e.id)"


@dataclass
class Crawl:
    depth: dict[str, int] = field(default_factory=dict)  # page name -> clicks from the index
    problems: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium: `make` installs it when root, "
                    "else run `sudo apt-get install chromium`")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install -c constraints.txt "
                                                                 "playwright (uses /usr/bin/chromium, downloads nothing)")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=FLAGS, viewport={"width": 1280, "height": 900}, offline=True)
        try:
            yield context
        finally:
            context.close()


def crawl(context, out: Path) -> Crawl:
    """Breadth-first from index.html over every local link; what is broken, and how deep each page is."""
    result = Crawl()
    queue, ids = deque([("index.html", 0)]), {}
    result.depth["index.html"] = 0
    links: list[tuple[str, str]] = []  # (from page, href)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    while queue:
        name, depth = queue.popleft()
        errors.clear()
        page.goto((out / name).as_uri(), wait_until="load")
        result.problems += [f"{name}: broken image {src}" for src in page.evaluate(BROKEN_IMAGES)]
        ids[name] = set(page.evaluate(IDS))
        for href in page.evaluate(LINKS):
            links.append((name, href))
            parts = urlsplit(href)
            if parts.scheme in ("http", "https"):
                result.problems.append(f"{name}: links off-line report to {href}")
                continue
            target = unquote(parts.path) or name
            if target.endswith(".html") and (out / target).parent == out and target not in result.depth \
                    and (out / target).is_file():
                result.depth[target] = depth + 1
                queue.append((target, depth + 1))
        result.problems += [f"{name}: console error: {e}" for e in errors]
    for source, href in links:
        parts = urlsplit(href)
        if parts.scheme:
            continue
        target = unquote(parts.path) or source
        if not (out / target).resolve().exists():
            result.problems.append(f"{source}: broken link {href}")
        elif parts.fragment and target in ids and parts.fragment not in ids[target]:
            result.problems.append(f"{source}: link {href} names no element of {target}")
    page.close()
    return result


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("browser-report")
    run, requirements, answers = make_report_inputs(base)
    (run / "notebooks").mkdir()
    (run / "notebooks" / "fundamentals.html").write_text("<!doctype html><title>nb</title><p>executed</p>")
    baseline = base / "baseline.json"
    write_baseline(run, baseline)
    out = base / "out"
    return build_report(run, out, requirements, baseline=baseline, answers=answers), out


def test_every_page_loads_clean_and_requirements_are_one_click_away(browser, report, artifacts) -> None:
    built, out = report
    result = crawl(browser, out)
    assert not result.problems, "\n".join(result.problems)
    pages = {p.name for p in built.pages}
    assert pages <= set(result.depth), f"unreachable from the index: {sorted(pages - set(result.depth))}"
    for row in built.requirements:
        assert result.depth[f"req-{row.item.id}.html"] == 1, row.item.id
    page = browser.new_page()
    page.goto((out / "index.html").as_uri(), wait_until="load")
    shot = artifacts("browser") / "index.png"
    page.screenshot(path=str(shot), full_page=True)
    page.goto((out / "req-r.pass.html").as_uri(), wait_until="load")
    # the requirement's figure is on its page and drawn
    assert page.evaluate("Array.from(document.images).filter(i => i.naturalWidth > 0).length") >= 1
    page.screenshot(path=str(artifacts("browser") / "requirement.png"), full_page=True)
    page.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_the_crawler_catches_a_broken_image_link_and_console_error(browser, report, tmp_path: Path) -> None:
    """The check has teeth: a page with a missing image, a dead link and a script error is reported."""
    _, out = report
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "index.html").write_text('<!doctype html><title>x</title><a href="other.html#nowhere">o</a>'
                                    '<a href="gone.html">g</a><img src="missing.png" alt="m">'
                                    '<script>console.error("boom")</script>')
    (bad / "other.html").write_text("<!doctype html><title>o</title><p id='here'>o</p>")
    problems = "\n".join(crawl(browser, bad).problems)
    assert "broken image" in problems and "missing.png" in problems
    assert "broken link gone.html" in problems
    assert "console error: boom" in problems
    assert "other.html#nowhere names no element" in problems
