"""End to end in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by Playwright.

Skipped where Chromium or Playwright is missing, unless AEBENCH_REQUIRE_BROWSER=1 (CI sets
it), in which case their absence fails the test.
"""

from __future__ import annotations

import json
import os
import re
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
#: screenshots of every step, kept after the run (CI archives this folder); gitignored
ARTIFACTS = Path(os.environ.get("AEBENCH_ARTIFACTS", Path(__file__).parent / "artifacts")) / "browser"
EPOCHS = 150
CELL = f"""\
from aebench.ui import Workbench
wb = Workbench({{
    "name": "browser", "seeds": [0],
    "data": {{"name": "digits", "subset": 400, "eval_subset": 100}},
    "model": {{"name": "stacked", "layers": [128, 128], "activation": "linear", "output_activation": "linear",
               "loss": "squared-error"}},
    "schedule": {{"name": "joint", "epochs": {EPOCHS}}},
    "optimizer": {{"name": "sgd", "lr": 0.001, "batch_size": 20}},
    "sweep": {{"optimizer.lr": [0.001, 1e6]}},
}})
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


def test_workbench_in_jupyterlab_stop_resume_failure_and_report(lab):
    """Launch by clicking, Stop mid-run, Resume into the same folder to the end, read a failed
    run's reason in the table, open the report link (a page Jupyter serves, with the title)."""
    from playwright.sync_api import expect, sync_playwright

    url, token, root = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    folder = root / "aebench-runs" / "browser-1"  # beside the notebook: visible in Lab's file browser
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        shot = lambda name: page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        try:
            workbench = _open_workbench(page, url, token)
            shot("1-form")
            # pick a smaller config by clicking: open the data section, 200 training rows instead of 400
            workbench.locator(".jupyter-widget-Collapse-header", has_text=re.compile(r"^\s*data\s*$")).click()
            subset = workbench.locator(".widget-inline-hbox", has_text="subset").first.locator("input")
            subset.fill("200")
            subset.press("Enter")
            workbench.locator("button", has_text="Launch").click()
            progress = workbench.locator(".widget-hbox", has_text="lr=0.001").first
            expect(progress).to_contain_text(re.compile(rf"epoch ([3-9]|\d\d+)/{EPOCHS}"), timeout=180_000)
            workbench.locator("button", has_text="Stop").click()
            expect(workbench).to_contain_text("stopped after 0 of 2 run(s)", timeout=60_000)
            shot("2-stopped")
            stopped = json.loads((folder / "runs" / "run-0000" / "status.json").read_text())
            assert stopped["status"] == "interrupted"
            workbench.locator("button", has_text="Resume").click()
            expect(workbench).to_contain_text("resuming 2 run(s) in aebench-runs/browser-1", timeout=30_000)
            # the curve goes on from the checkpoint: the row says where, and it is past epoch 1
            expect(progress).to_contain_text(re.compile(r"resumed at epoch ([4-9]|\d\d+)"), timeout=120_000)
            table = workbench.locator("table.aebench-results")
            expect(table).to_contain_text("diverged", timeout=300_000)  # the failed run's reason, in the table
            expect(workbench.locator("button", has_text="Launch")).to_be_enabled(timeout=60_000)
            expect(table).to_contain_text("done")
            expect(workbench).to_contain_text("1 failed")
            shot("3-resumed")
            workbench.locator("button", has_text="open report").click()
            link = workbench.locator("a.aebench-report-link")
            expect(link).to_be_visible(timeout=120_000)
            with page.context.expect_page() as opened:
                link.click()
            report = opened.value
            report.wait_for_load_state()
            expect(report).to_have_title("browser", timeout=30_000)  # Jupyter served it: no 404 page
            expect(report.locator("h1")).to_have_text("browser")
            report.screenshot(path=str(ARTIFACTS / "4-report.png"), full_page=True)
            shot("5-workbench")
        except Exception:
            shot("failure")
            raise
        finally:
            browser.close()
    # On disk: one folder, the stopped run finished in it with one unbroken curve, the typed value used.
    assert [p.name for p in (root / "aebench-runs").iterdir()] == ["browser-1"]
    import aebench

    ds = aebench.load_results(folder)
    assert [str(s) for s in ds["status"].squeeze("seed").values] == ["done", "failed"]
    assert list(ds["recon_error"].sel({"optimizer.lr": 0.001}).dropna("epoch", how="all").epoch.values) == list(
        range(1, EPOCHS + 1)
    )
    assert '"subset": 200' in (folder / "runs" / "run-0000" / "spec.json").read_text()


def _open_workbench(page, url: str, token: str):
    from playwright.sync_api import expect

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
    return workbench
