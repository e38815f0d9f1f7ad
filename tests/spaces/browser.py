"""What the Spaces' browser tests share: serving a Space's app.py on a free port and driving its
page in Debian's headless Chromium with Playwright."""

from __future__ import annotations

import contextlib
import os
import socket
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def sync_playwright_or_skip():
    """Playwright's ``sync_playwright``; skips the test without Chromium or Playwright."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (scripts/install_system_deps.sh installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the Space exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the Space did not serve {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


class RunningSpace:
    """A Space served by :func:`serve_space`: its ``url`` and the times of the test's milestones."""

    def __init__(self, url: str):
        self.url = url
        self.start = time.monotonic()
        self.timings: dict[str, float] = {}

    def mark(self, milestone: str) -> None:
        """Record how long after the server's start ``milestone`` was reached (printed at the end)."""
        self.timings[milestone] = time.monotonic() - self.start


@contextlib.contextmanager
def serve_space(app: Path, tmp_path: Path, env: dict[str, str | None], timeout: float):
    """Run ``python app`` in ``tmp_path`` on a free local port until the block ends; ``env``
    overrides the environment (``None``: unset). Yields a :class:`RunningSpace` once the page is served."""
    port = _free_port()
    space = RunningSpace(f"http://127.0.0.1:{port}/")
    environ = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1",
                   GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
                   GRADIO_TEMP_DIR=str(tmp_path / "gradio"), PYTHONUNBUFFERED="1")
    if environ.get("PYTHONPATH"):  # the server runs in tmp_path: keep it importing what the test imports
        entries = environ["PYTHONPATH"].split(os.pathsep)
        environ["PYTHONPATH"] = os.pathsep.join(str(Path(entry).resolve()) for entry in entries)
    for name, value in env.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    log = tmp_path / "server.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, str(app)], cwd=tmp_path, env=environ,
                                stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_until_serving(space.url, proc, log, timeout=timeout)
        space.mark("server up")
        yield space
    except BaseException:
        # What the server said is often the only clue to a failure seen in the browser.
        print(f"e2e milestones reached: {space.timings}\nserver log (tail):\n{log.read_text(errors='replace')[-4000:]}")
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
    print("e2e timings (s from server start): " + ", ".join(f"{k} {v:.1f}" for k, v in space.timings.items()))


@contextlib.contextmanager
def chromium_page(sync_playwright, url: str, height: int):
    """A 1280 x ``height`` page of headless Chromium at ``url`` (closed with the block)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": height})
            page.goto(url)
            yield page
        finally:
            browser.close()


def set_number(page, elem_id: str, value) -> None:
    """Type ``value`` into a number box (or a slider's) and wait until the page has taken it."""
    from playwright.sync_api import expect

    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Tab")
    slider = page.locator(f"#{elem_id} input[type=range]")
    if slider.count():  # a slider's range follows its number box: the page has taken the value
        expect(slider.first).to_have_value(str(value), timeout=10000)


def upload(page, elem_id: str, path: Path) -> None:
    """Put ``path`` into the audio input ``#elem_id`` and wait for its player."""
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
    page.wait_for_selector(f"#{elem_id} audio", state="attached", timeout=10000)


def wait_for_error_toast(page, text: str):
    """The error toast that says ``text`` (waits for it)."""
    toast = page.locator(".toast-body").filter(has_text=text)
    toast.first.wait_for(timeout=20000)
    return toast


def wait_for_player(page, elem_id: str) -> None:
    """Wait until the waveform player ``#elem_id`` (in a shadow root, which Playwright's CSS
    pierces) has fetched its audio."""
    page.locator(f"#{elem_id} audio[src^='blob:']").first.wait_for(state="attached", timeout=20000)


def assert_image_shown(page, elem_id: str) -> None:
    """The image component ``#elem_id`` shows a loaded picture over 300 pixels wide."""
    image = f"#{elem_id} img"
    page.wait_for_selector(image, timeout=10000)
    assert page.locator(image).evaluate("img => img.complete && img.naturalWidth > 300")


def download(page, elem_id: str) -> tuple[str, bytes]:
    """``(file name, bytes)`` behind the one download link of the file component ``#elem_id``."""
    link = page.locator(f"#{elem_id} a[download]")
    assert link.count() == 1
    response = page.request.get(link.get_attribute("href"))
    assert response.ok
    return link.get_attribute("download"), response.body()


def screenshot(page, path: Path, space: Path | None = None) -> Path:
    """A full-page screenshot at ``path`` (checked not to be blank-small); with ``UPDATE_SCREENSHOTS=1``
    also copied to ``space``'s ``screenshot.png`` (the picture its README shows)."""
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if space is not None and os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(path, space / "screenshot.png")
    return path
