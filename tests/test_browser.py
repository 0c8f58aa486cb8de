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
EPOCHS = 40
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
    "ensemble": True,
}})
wb
"""
#: an earlier launch under the same root, to compare with (written by aebench.run before the browser starts)
EARLIER = {
    "name": "earlier",
    "seeds": [0],
    "data": {"name": "digits", "subset": 200, "eval_subset": 100},
    "model": {
        "name": "stacked",
        "layers": [128, 128],
        "activation": "linear",
        "output_activation": "linear",
        "loss": "squared-error",
    },
    "schedule": {"name": "joint", "epochs": 10},
    "optimizer": {"name": "sgd", "lr": 0.003, "batch_size": 20},
}
#: the Workbench's picture for the tutorials and the README (notebook 06 embeds it)
DOC_IMAGE = Path(__file__).parent.parent / "docs" / "img" / "workbench.png"


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
    # no "get Jupyter news?" toast over the page (and no fetch of news)
    settings = tmp_path / "cfg" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
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
    """Launch by clicking, see a diverging member's reason while its ensemble group still trains,
    Stop mid-run, Resume into the same folder to the end, save the live figure as SVG, open the
    report link (a page Jupyter serves), and compare two launches of the catalogue."""
    from playwright.sync_api import expect, sync_playwright

    import aebench
    from aebench.spec import Spec

    url, token, root = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    folder = root / "aebench-runs" / "browser-1"  # beside the notebook: visible in Lab's file browser
    aebench.run(Spec.from_dict(EARLIER), out=root / "aebench-runs" / "earlier-1", progress=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 2200})  # the whole Workbench in view
        shot = lambda name: page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        try:
            workbench = _open_workbench(page, url, token)
            expect(workbench).to_contain_text("Launch will start 2 runs (2 sweep points × 1 seed)")
            shot("1-form")
            # pick a smaller config by clicking: open the data section, 200 training rows instead of 400
            workbench.locator(".jupyter-widget-Collapse-header", has_text=re.compile(r"^\s*data\s*$")).click()
            # each field's description is on the page, beside the field
            subset_row = workbench.locator(".aebench-field", has_text="subset").first
            expect(subset_row.locator(".aebench-help")).to_be_visible()
            expect(
                workbench.locator(".aebench-field", has_text="eval_subset").locator(".aebench-help")
            ).not_to_be_empty()
            subset = subset_row.locator("input")
            subset.fill("200")
            subset.press("Enter")
            workbench.locator("button", has_text="Launch").click()
            progress = workbench.locator(".widget-hbox", has_text="lr=0.001").first
            diverging = workbench.locator(".widget-hbox", has_text="lr=1e+06").first
            # the diverged member's reason, while the other member of its group still trains
            expect(diverging).to_contain_text("diverged", timeout=180_000)
            expect(progress).to_contain_text(re.compile(rf"epoch \d+/{EPOCHS}"))
            assert not (folder / "runs" / "run-0000" / "metrics.nc").exists()  # the group has not ended
            expect(progress).to_contain_text(re.compile(rf"epoch ([3-9]|\d\d+)/{EPOCHS}"), timeout=180_000)
            shot("2-diverged-while-running")
            workbench.locator("button", has_text="Stop").click()
            expect(workbench).to_contain_text("stopped after 0 of 2 run(s)", timeout=60_000)
            expect(diverging).to_contain_text("diverged")  # not turned into "interrupted" by the Stop
            expect(workbench).not_to_contain_text("--resume")
            expect(workbench.locator(".aebench-resume-note")).to_contain_text("Resume will continue 2 interrupted runs")
            shot("3-stopped")
            stopped = json.loads((folder / "runs" / "run-0000" / "status.json").read_text())
            assert stopped["status"] == "interrupted"
            workbench.locator("button", has_text="Resume").click()
            expect(workbench).to_contain_text("resuming in aebench-runs/browser-1: continue 2 interrupted runs")
            # the curve goes on from the checkpoint: the row says where, and it is past epoch 1
            expect(progress).to_contain_text(re.compile(r"resumed at epoch ([4-9]|\d\d+)"), timeout=120_000)
            expect(diverging).to_contain_text("diverged")  # the resumed group still says why its member failed
            table = workbench.locator("table.aebench-results")
            expect(table).to_contain_text("diverged")  # the failed run's reason, in the table
            expect(table).to_contain_text("done", timeout=300_000)
            expect(workbench.locator("button", has_text="Launch")).to_be_enabled(timeout=60_000)
            expect(workbench).to_contain_text("1 failed")
            # the live plot: gradient steps on x, saved as SVG
            workbench.locator("select").filter(
                has=page.locator("option", has_text="gradient steps")
            ).first.select_option("gradient steps")
            workbench.locator("button", has_text="Save figure").first.click()
            expect(workbench.locator(".aebench-saved").first).to_contain_text(
                "recon_error-by-steps.svg", timeout=30_000
            )
            svg = folder / "figures" / "recon_error-by-steps.svg"
            assert svg.is_file() and "<svg" in svg.read_text()[:500]
            shot("4-resumed")
            workbench.screenshot(path=str(ARTIFACTS / "workbench.png"))  # what docs/img/workbench.png is taken from
            workbench.locator("button", has_text="open report").click()
            link = workbench.locator("a.aebench-report-link")
            expect(link).to_be_visible(timeout=120_000)
            with page.context.expect_page() as opened:
                link.click()
            report = opened.value
            report.wait_for_load_state()
            expect(report).to_have_title("browser", timeout=30_000)  # Jupyter served it: no 404 page
            expect(report.locator("h1")).to_have_text("browser")
            report.screenshot(path=str(ARTIFACTS / "5-report.png"), full_page=True)
            report.close()
            # compare: both launches from the catalogue, overlaid, with their tables
            compare = page.locator(".aebench-compare")
            compare.locator(".jupyter-widget-Collapse-header").click()
            pick = compare.locator("select[multiple]")
            expect(pick.locator("option")).to_have_count(2, timeout=30_000)
            pick.select_option(label=[pick.locator("option").nth(i).inner_text() for i in range(2)])
            compare.locator("button", has_text="Compare").click()
            expect(compare.locator("table.aebench-compare-table")).to_contain_text("earlier-1", timeout=60_000)
            expect(compare.locator("table.aebench-compare-table")).to_contain_text("browser-1")
            expect(compare.locator("img")).to_be_visible()
            compare.locator("button", has_text="Save figure").click()
            expect(compare.locator(".aebench-saved")).to_contain_text("recon_error.svg", timeout=30_000)
            shot("6-compare")
        except Exception:
            shot("failure")
            raise
        finally:
            browser.close()
    # On disk: the stopped run finished in its folder with one unbroken curve, the typed value used.
    assert sorted(p.name for p in (root / "aebench-runs").iterdir()) == ["browser-1", "compare", "earlier-1"]
    ds = aebench.load_results(folder)
    assert [str(s) for s in ds["status"].squeeze("seed").values] == ["done", "failed"]
    assert list(ds["recon_error"].sel({"optimizer.lr": 0.001}).dropna("epoch", how="all").epoch.values) == list(
        range(1, EPOCHS + 1)
    )
    assert '"subset": 200' in (folder / "runs" / "run-0000" / "spec.json").read_text()
    compared = root / "aebench-runs" / "compare" / "recon_error.svg"
    assert "<svg" in compared.read_text()[:500]


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
