"""End to end in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by Playwright.

Skipped where Chromium or Playwright is missing, unless AEBENCH_REQUIRE_BROWSER=1 (CI sets
it), in which case their absence fails the test.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
CELL = """\
from aebench.ui import Workbench
wb = Workbench({
    "name": "browser", "seeds": [0],
    "data": {"name": "digits", "subset": 400, "eval_subset": 100},
    "model": {"name": "stacked", "layers": [32, 16]},
    "corruption": {"name": "gaussian", "level": 0.2},
    "schedule": {"name": "joint", "epochs": 3},
    "optimizer": {"name": "rmsprop", "lr": 0.01, "batch_size": 50},
}, out="wb-out")
wb
"""


def _require():
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright)")
    if shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) is None:
        missing.append("jupyterlab")
    if missing:
        if os.environ.get("AEBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail("browser test required but missing: " + ", ".join(missing))
        pytest.skip("browser test needs " + ", ".join(missing))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    _require()
    import nbformat

    root = tmp_path / "lab"
    root.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "workbench.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=",
            "--allow-root",
            "--ServerApp.port_retries=0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "lab.log").open("w"),
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
            time.sleep(0.5)
    yield url, token, root
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_workbench_in_jupyterlab_launches_and_shows_results(lab):
    from playwright.sync_api import expect, sync_playwright

    url, token, root = lab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        try:
            page.goto(f"{url}/lab/tree/workbench.ipynb?token={token}")
            cell = page.locator(".jp-Notebook .jp-Cell").first
            expect(cell).to_be_visible(timeout=90_000)
            # the kernel must be up before the cell is run, or the request is lost
            expect(page.locator(".jp-StatusBar-TextItem", has_text="Idle").first).to_be_visible(timeout=120_000)
            workbench = page.locator(".aebench-workbench")
            for _attempt in range(3):
                cell.locator(".jp-InputArea-editor").click()
                page.keyboard.press("Control+Enter")  # run in place
                try:
                    expect(workbench).to_be_visible(timeout=60_000)
                    break
                except AssertionError:
                    continue
            expect(workbench).to_be_visible(timeout=60_000)
            # pick a tiny config by clicking: 200 training rows instead of 400
            subset = workbench.locator(".widget-inline-hbox", has_text="subset").first.locator("input")
            subset.fill("200")
            subset.press("Enter")
            workbench.locator("button", has_text="Launch").click()
            table = workbench.locator("table.aebench-results")
            expect(table).to_be_visible(timeout=180_000)
            expect(table).to_contain_text("done", timeout=60_000)
            expect(workbench.locator("button", has_text="Launch")).to_be_enabled(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "workbench.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "workbench-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    # The run really happened, with the value typed in the browser.
    import aebench

    ds = aebench.load_results(root / "wb-out" / "launch-1")
    assert str(ds["status"].item()) == "done"
    assert '"subset": 200' in (root / "wb-out" / "launch-1" / "runs" / "run-0000" / "spec.json").read_text()
