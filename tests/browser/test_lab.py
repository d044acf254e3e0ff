"""JupyterLab in a real browser: open start-here.ipynb, run every cell, see the verdict banner and a chart.

Needs Debian's Chromium (/usr/bin/chromium) and the `playwright` Python package (no browser
download: it drives the system Chromium). Under CI=true their absence is a failure.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("DWCPKIT_TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHART = ".jp-RenderedSVG img, .jp-RenderedImage img"  # Lab shows image/svg+xml as an <img>
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _require():
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append("Debian's chromium (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install playwright)")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail("browser test needs " + " and ".join(missing))
        pytest.skip("needs " + " and ".join(missing))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    _require()
    work = tmp_path / "lab"
    work.mkdir()
    # A copy without outputs (Lab autosaves: never touch the committed notebook), so the banner and
    # charts the test waits for can only come from this run.
    nb = json.loads((ROOT / "analyses" / "start-here.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    (work / "start-here.ipynb").write_text(json.dumps(nb))
    config = tmp_path / "config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port = _free_port()
    env = {**os.environ, "HOME": str(tmp_path), "JUPYTER_CONFIG_DIR": str(config),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
         "--ServerApp.password=", f"--ServerApp.root_dir={work}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode(errors="replace")[-2000:] if proc.poll() is not None else ""
                pytest.fail(f"JupyterLab did not start on {url}: {out}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_start_here_runs_in_jupyterlab(lab):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "start-here-lab.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(90_000)
            page.goto(f"{lab}/lab/tree/start-here.ipynb")
            page.wait_for_selector(".jp-Notebook .jp-Cell")
            accept = page.locator(".jp-Dialog .jp-mod-accept")  # "Select Kernel" when Lab asks
            try:
                accept.wait_for(timeout=5_000)
                accept.click()
            except PlaywrightTimeout:
                pass
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            try:
                banner = page.wait_for_selector(".dwcpkit-verdict")
                chart = page.wait_for_selector(CHART)
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
                text = banner.inner_text()
                chart_box = chart.bounding_box()
                errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count()
            finally:
                page.screenshot(path=str(shot), full_page=True)  # the artefact, also when a wait failed
                (ARTIFACTS / "start-here-lab.html").write_text(page.content())
        finally:
            browser.close()
    assert "ESCALATE" in text and "tour complete" in text
    assert chart_box and chart_box["width"] > 100 and chart_box["height"] > 50  # a real chart was drawn
    assert shot.stat().st_size > 10_000
    assert errors == 0, "a cell wrote to stderr in JupyterLab"
