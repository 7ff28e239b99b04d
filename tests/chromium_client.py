"""Headless Chromium as a client of an `effnet app` page, as a user's browser opens it: the
browser the page tests (tests/test_browser.py, test_clients.py, test_serve.py) and
benchmarks/browser_latency.py drive. Not part of the installed package: the benchmark puts
tests/ on its path to import it.

The browser is the system's: Debian's `chromium` (or $CHROMIUM), the one `make test` installs.
Playwright for Python (extra `test`) drives it, `executable_path` pointing at it: Playwright
owns the DevTools protocol (its pipe, launch flags, waiting, screenshots, ending the browser and
its helpers), so this module only says what the tests need. Playwright's own browsers are never
downloaded (`playwright install` is not run) nor used.

Example:
    >>> with Browser() as browser:
    ...     page = browser.open(app_url("http://127.0.0.1:8000/", ["examples/a.png"]))
    ...     results = page.results(timeout=60)
"""
from __future__ import annotations

import json
import os
import shutil
import urllib.parse
from typing import Any, Sequence

from playwright.sync_api import Error, TimeoutError as PlaywrightTimeout, sync_playwright

EXECUTABLES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Quiet, beyond Playwright's own launch flags (headless, --no-sandbox since the sandbox refuses
# root, no first run, no background networking, component updates or breakpad): no sync,
# phishing checks, domain reliability reports or hyperlink pings; no GPU (the page's CPU
# delegate needs no WebGL).
FLAGS = ("--disable-gpu", "--disable-sync", "--disable-client-side-phishing-detection",
         "--disable-domain-reliability", "--no-pings")
# offline=True: no host name resolves but 127.0.0.1 and localhost, so the browser reaches
# nothing beyond this machine (a page that needs the network fails at once, and says so).
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"


def find_chromium() -> str | None:
    """The Chromium to drive: $CHROMIUM, else the first of EXECUTABLES on the PATH."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    return next((path for path in map(shutil.which, EXECUTABLES) if path), None)


class Page:
    """One tab: evaluate JavaScript in it, wait for its results, take a screenshot."""

    def __init__(self, page: Any) -> None:
        self.page = page  # Playwright's

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        try:
            return self.page.evaluate(expression)
        except Error as e:
            raise RuntimeError(f"{expression!r} failed in the page: "
                               f"{e.message.splitlines()[0]}") from None

    def results(self, timeout: float = 60.0) -> Any:
        """The JSON the page writes into <pre id="results">, waited for at most `timeout` s."""
        # a selector, not wait_for_function: that one evals its predicate in the page, which
        # the app's Content-Security-Policy (no 'unsafe-eval') refuses
        try:
            found = self.page.wait_for_selector("#results:not(:empty)", state="attached",
                                                timeout=timeout * 1000)
        except PlaywrightTimeout:
            state = self.evaluate("document.getElementById('status')?.textContent || ''")
            raise TimeoutError(f"the page wrote no results in {timeout:g} s "
                               f"(its status: {state!r})") from None
        return json.loads(found.text_content())

    def screenshot(self, path: str | os.PathLike) -> str:
        """A PNG of the visible page at `path` (written atomically)."""
        from keras_effnet.files import atomic_path

        with atomic_path(path) as staged, open(staged, "wb") as f:
            f.write(self.page.screenshot(type="png"))
        return os.fspath(path)


class Browser:
    """Headless Chromium with a `width` x `height` viewport (device scale 1), ended on leaving
    `with`; `offline` (the default) keeps it to this machine (see OFFLINE)."""

    def __init__(self, executable: str | None = None, width: int = 900, height: int = 700,
                 offline: bool = True) -> None:
        found = shutil.which(executable) if executable else find_chromium()
        if not found:
            looked = executable or "$CHROMIUM and " + ", ".join(EXECUTABLES)
            raise FileNotFoundError(f"no Chromium found (looked for {looked}); on Debian: "
                                    "apt-get install chromium (`make test` installs it)")
        self.playwright = sync_playwright().start()
        try:
            self.browser = self.playwright.chromium.launch(
                executable_path=found, headless=True,
                args=[*FLAGS, *([OFFLINE] if offline else [])])
            self.context = self.browser.new_context(
                viewport={"width": width, "height": height}, device_scale_factor=1)
        except BaseException:
            self.playwright.stop()
            raise

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def open(self, url: str) -> Page:
        """A new tab on `url` (the page goes on loading in the background)."""
        page = self.context.new_page()
        page.goto(url, wait_until="commit")
        return Page(page)

    def close(self) -> None:
        """End the browser (Playwright ends its processes), then Playwright's driver."""
        try:
            self.browser.close()
        finally:
            self.playwright.stop()


def app_url(base: str, images: Sequence[str] = ()) -> str:
    """An app's URL, with `?images=` naming files relative to its folder when given."""
    base = base if base.endswith("/") else base + "/"
    if not images:
        return base
    return base + "?images=" + ",".join(urllib.parse.quote(path) for path in images)
