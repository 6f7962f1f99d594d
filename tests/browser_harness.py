"""Helpers (no tests): headless Debian Chromium driven by Playwright, with the network cut off.

Chromium resolves no host name but 127.0.0.1 (``--host-resolver-rules``), and every request the page
makes is recorded, so a test can show that nothing left the machine. Screenshots go to
``test-artifacts/`` (git-ignored) at the top of the checkout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
# As root Chromium needs --no-sandbox; the background-networking flags stop its own calls home.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def chromium_path() -> str:
    """Debian's chromium; skips (loudly) only where .ci/run could not install it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = os.environ.get("DECON_BROWSER_UNAVAILABLE")
    if reason:
        pytest.skip(f"BROWSER TESTS NOT RUN: Debian chromium could not be installed ({reason})")
    pytest.fail("Debian chromium is not installed: run `apt-get install chromium` (.ci/run does)")
    raise AssertionError("unreachable")


def is_local(url: str) -> bool:
    return url.startswith(("http://127.0.0.1", "file://", "data:", "blob:", "about:"))


@contextlib.contextmanager
def browser_page(width: int = 1280, height: int = 1600) -> Iterator[tuple[Any, list[str]]]:
    """(page, list of every URL the page requested)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            yield page, requests
        finally:
            browser.close()


def screenshot(page: Any, name: str, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 1000
    return path
