"""The dashboard in a real browser: headless Chromium logs in, watches a file job appear
and finish, opens it, and keeps a screenshot. Skipped, loudly, without Chromium."""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.api.instances.helpers import instance
from tests.servers import Server, loadbay_env, start_server

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).parent / "screenshots"


@pytest.fixture
def chrome() -> Iterator[object]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("Chromium or ChromeDriver not installed: the browser test is SKIPPED")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        # No host but this one resolves: a page that needs the internet fails here.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    # Chromium leaves its singleton folders in TMPDIR: in one removed afterwards. Not under
    # tmp_path, whose length puts the singleton's socket past the 107 bytes a path may have.
    browser_tmp = Path(tempfile.mkdtemp(prefix="loadbay-chromium-"))
    service = Service(CHROMEDRIVER, env={**os.environ, "TMPDIR": str(browser_tmp)})
    try:
        driver = webdriver.Chrome(service=service, options=options)
        driver.set_page_load_timeout(30)
        yield driver
        driver.quit()
    finally:
        shutil.rmtree(browser_tmp, ignore_errors=True)


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    running = start_server(loadbay_env(tmp_path, database_url), tmp_path / "server.log")
    yield running
    running.stop()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_person_logs_in_and_watches_a_file_job_finish(
    chrome: object, server: Server, backend: str
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chrome
    wait = WebDriverWait(driver, 30)  # type: ignore[arg-type]
    key = server.admin_key()
    auth = {"Authorization": f"Bearer {key}"}

    driver.get(f"{server.url}/ui")  # type: ignore[attr-defined]
    wait.until(seen.url_contains("/ui/login"))
    driver.find_element(By.ID, "key").send_keys(key)  # type: ignore[attr-defined]
    driver.find_element(By.ID, "login").click()  # type: ignore[attr-defined]
    wait.until(seen.presence_of_element_located((By.ID, "jobs")))
    assert key not in driver.current_url  # type: ignore[attr-defined]

    lines = [orjson.dumps(instance(n)) for n in range(1, 3001)] + [b"not json"]
    httpx.put(f"{server.url}/files/in/big.ndjson", content=b"\n".join(lines), headers=auth)
    accepted = httpx.post(
        f"{server.url}/instance-storage/instances/bulk",
        json={"recordsFileName": "in/big.ndjson"},
        headers={**auth, "Prefer": "respond-async"},
    )
    job = accepted.json()["id"]

    row = f'tr[data-job="{job}"] td.status-completed'
    wait.until(seen.presence_of_element_located((By.CSS_SELECTOR, row)))  # the page refreshes
    driver.find_element(By.LINK_TEXT, job).click()  # type: ignore[attr-defined]
    wait.until(seen.text_to_be_present_in_element((By.ID, "status"), "completed"))
    page = driver.page_source  # type: ignore[attr-defined]
    assert "3,001 — 3,000 in, 1 failed" in page
    driver.find_element(By.ID, "errors-file").click()  # type: ignore[attr-defined]
    wait.until(seen.text_to_be_present_in_element((By.TAG_NAME, "body"), "INVALID_JSON"))

    SCREENSHOTS.mkdir(exist_ok=True)
    for page_name, url, marker in (
        ("job", f"{server.url}/ui/jobs/{job}", "job"),
        ("jobs", f"{server.url}/ui", "chart"),
    ):
        driver.get(url)  # type: ignore[attr-defined]
        wait.until(seen.presence_of_element_located((By.ID, marker)))
        shot = driver.get_screenshot_as_png()  # type: ignore[attr-defined]
        (SCREENSHOTS / f"{page_name}-{backend}.png").write_bytes(shot)
        assert png_size(shot)[0] >= 1000
        assert len(shot) > 10_000  # a rendered page, not a blank one


def test_the_api_docs_render_without_the_internet(chrome: object, server: Server) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chrome
    driver.get(f"{server.url}/docs")  # type: ignore[attr-defined]
    title = (By.CSS_SELECTOR, ".swagger-ui .info .title")
    WebDriverWait(driver, 30).until(seen.text_to_be_present_in_element(title, "Loadbay"))  # type: ignore[arg-type]
