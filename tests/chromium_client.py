"""Headless Chromium as a client of an `effnet app` page, as a user's browser opens it: the
browser the page tests (tests/test_browser.py, test_clients.py, test_serve.py) and
benchmarks/browser_latency.py drive. Not part of the installed package: the benchmark puts
tests/ on its path to import it.

The browser is Debian's `chromium` (or $CHROMIUM), driven over the DevTools protocol on a
pipe (`--remote-debugging-pipe`: JSON messages ending in a NUL byte, on the browser's file
descriptors 3 and 4): the standard library suffices and no debugging port is opened. `Browser`
opens a page, waits a bounded time for what the page writes, reads it and takes screenshots;
leaving its `with` block ends the browser by its process id (and its helper processes, which
share its process group).

Example:
    >>> with Browser() as browser:
    ...     page = browser.open(app_url("http://127.0.0.1:8000/", ["examples/a.png"]))
    ...     results = page.results(timeout=60)
"""
from __future__ import annotations

import base64
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from typing import Any, Sequence

EXECUTABLES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless, and quiet: no first-run UI, no background traffic (sync, component updates,
# metrics, safe browsing). --no-sandbox: Chromium's sandbox refuses to run as root, as the
# tests and CI do here.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-client-side-phishing-detection", "--disable-domain-reliability",
         "--disable-breakpad", "--metrics-recording-only", "--no-pings",
         "--disable-extensions", "--disable-default-apps", "--no-first-run",
         "--no-default-browser-check", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe")
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

    def __init__(self, browser: "Browser", session: str) -> None:
        self.browser, self.session = browser, session

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        answer = self.browser.call("Runtime.evaluate", {"expression": expression,
                                                        "returnByValue": True}, self.session)
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression!r} failed in the page: "
                               f"{answer['exceptionDetails'].get('text')}")
        return answer["result"].get("value")

    def results(self, timeout: float = 60.0) -> Any:
        """The JSON the page writes into <pre id="results">, waited for at most `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.evaluate("document.getElementById('results')?.textContent || ''")
            if text:
                return json.loads(text)
            time.sleep(0.1)
        state = self.evaluate("document.getElementById('status')?.textContent || ''")
        raise TimeoutError(f"the page wrote no results in {timeout:g} s (its status: {state!r})")

    def screenshot(self, path: str | os.PathLike) -> str:
        """A PNG of the visible page at `path` (written atomically)."""
        from keras_effnet.files import atomic_path

        data = self.browser.call("Page.captureScreenshot", {"format": "png"}, self.session)
        with atomic_path(path) as staged, open(staged, "wb") as f:
            f.write(base64.b64decode(data["data"]))
        return os.fspath(path)


class Browser:
    """Headless Chromium with a `width` x `height` viewport, ended on leaving `with`;
    `offline` (the default) keeps it to this machine (see OFFLINE)."""

    def __init__(self, executable: str | None = None, width: int = 900, height: int = 700,
                 offline: bool = True) -> None:
        executable = executable or find_chromium()
        if not executable:
            raise FileNotFoundError("no Chromium found (looked for $CHROMIUM and "
                                    f"{', '.join(EXECUTABLES)}); on Debian: apt-get install "
                                    "chromium (`make test` installs it)")
        self.size = (width, height)
        self.profile = tempfile.mkdtemp(prefix="effnet-chromium-")
        self._log = open(os.path.join(self.profile, "stderr.log"), "wb")
        to_browser, self._to_browser = os.pipe()
        self._from_browser, from_browser = os.pipe()
        # the browser reads commands on fd 3 and writes answers on fd 4: bash (dash takes one
        # digit fds only) moves the pipes there and execs it, so we hold the browser itself
        moves = [f"3<&{to_browser}", f"4>&{from_browser}"] + [
            f"{fd}<&-" for fd in (to_browser, from_browser) if fd not in (3, 4)]
        self.process = subprocess.Popen(
            ["bash", "-c", 'exec "$0" "$@" ' + " ".join(moves), executable, *FLAGS,
             *([OFFLINE] if offline else []), f"--user-data-dir={self.profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            pass_fds=(to_browser, from_browser), start_new_session=True)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._id = b"", 0

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _exited(self) -> RuntimeError:
        """The error of a browser that closed its pipe: its exit status and last words."""
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._log.flush()
        with open(self._log.name, "rb") as f:
            said = f.read()[-3000:].decode("utf-8", "replace")
        return RuntimeError(f"Chromium exited (status {self.process.poll()}): {said}")

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise self._exited()
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """Send one DevTools command and return its result (events are skipped)."""
        self._id += 1
        command = {"id": self._id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        try:
            os.write(self._to_browser, json.dumps(command).encode() + b"\0")
        except BrokenPipeError:
            raise self._exited() from None
        deadline = time.monotonic() + timeout
        while True:
            answer = self._message(deadline)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"DevTools {method}: {answer['error'].get('message')}")
                return answer["result"]

    def open(self, url: str) -> Page:
        """A new tab on `url` (the page goes on loading in the background)."""
        width, height = self.size
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target,
                                                      "flatten": True})["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
        self.call("Page.navigate", {"url": url}, session)
        return Page(self, session)

    def close(self) -> None:
        """End the browser by its process id, then any helper left in its process group."""
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the group the browser led
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def app_url(base: str, images: Sequence[str] = ()) -> str:
    """An app's URL, with `?images=` naming files relative to its folder when given."""
    base = base if base.endswith("/") else base + "/"
    if not images:
        return base
    return base + "?images=" + ",".join(urllib.parse.quote(path) for path in images)

