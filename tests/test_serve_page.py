"""The page of `mefgan serve` in a real browser: headless Chromium from Debian, driven by Selenium.

Skips when chromium or chromedriver is absent (``make browser-deps`` installs them), unless
``MEFGAN_REQUIRE_BROWSER=1`` (set by CI) makes that a failure. The screenshot is kept in
``$MEFGAN_TEST_ARTIFACTS`` (default: the test's temporary folder).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mefgan_tf.images import to_float, to_uint8, write_image
from mefgan_tf.samples import sample_pair
from mefgan_tf.serve.app import create_app
from mefgan_tf.stages import generator_stages

CHROMIUM = Path(os.environ.get("MEFGAN_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("MEFGAN_CHROMEDRIVER", "/usr/bin/chromedriver"))
MISSING = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
if MISSING and os.environ.get("MEFGAN_REQUIRE_BROWSER") == "1":
    raise RuntimeError(f"MEFGAN_REQUIRE_BROWSER=1 but {', '.join(MISSING)} missing (run `make browser-deps`)")
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"no headless browser: {', '.join(MISSING)} missing (`make browser-deps` installs Debian's chromium)"
)
CHROME_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1000,860",
)
WAIT_S = 90


@pytest.fixture(scope="module")
def fuser(gated_fuser, random_generator):
    """A real fuser whose gate is open unless a test closes it to watch the page wait."""
    fuser = gated_fuser(generator_stages(random_generator(seed=12)))
    fuser.gate.set()
    return fuser


@pytest.fixture(scope="module")
def server(fuser, running):
    with running(create_app(fuser)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROME_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.set_script_timeout(WAIT_S)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def demo_pair(tmp_path_factory) -> tuple[Path, Path]:
    """A non-square demo pair (64 x 43) from a photo scikit-image ships, as PNG files."""
    folder = tmp_path_factory.mktemp("pair")
    under, over = sample_pair("chelsea", max_side=64)
    return write_image(folder / "under.png", under), write_image(folder / "over.png", over)


def wait_for(driver, script: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(lambda d: d.execute_script(script))


def upload(driver, server: str, *paths: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.get(server + "/")
    driver.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in paths))
    wait_for(driver, f"return !document.getElementById('fuse').disabled && document.querySelectorAll('.thumb').length === {len(paths)}")
    driver.find_element(By.ID, "fuse").click()


# The fused image's size and pixels, read back through a canvas.
READ_FUSED = """
const img = document.getElementById('fused');
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const context = canvas.getContext('2d');
context.drawImage(img, 0, 0);
return [img.naturalWidth, img.naturalHeight, Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data)];
"""


def test_the_page_fuses_an_uploaded_pair_and_shows_it_with_a_slider_and_download(browser, server, demo_pair, fuser, tmp_path):
    from mefgan_tf.images import read_image

    fuser.gate.clear()  # hold the server's worker: the page must show that it waits
    try:
        upload(browser, server, *demo_pair)
        wait_for(browser, "return !document.getElementById('progress').hidden && "
                 "document.getElementById('status').textContent.startsWith('Fusing on the server')")
        assert browser.execute_script("return document.getElementById('fuse').disabled")
    finally:
        fuser.gate.set()
    wait_for(browser, "const img = document.getElementById('fused'); return !document.getElementById('output').hidden && img.complete && img.naturalWidth > 0")
    wait_for(browser, "return document.getElementById('status').textContent.startsWith('Fused 2 exposures')")
    width, height, data = browser.execute_script(READ_FUSED)
    pixels = np.array(data, np.uint8).reshape(height, width, 4)[..., :3]
    under, over = (read_image(p) for p in demo_pair)
    expected = to_uint8(fuser([under, over]))
    assert (width, height) == (64, 43) == (expected.shape[1], expected.shape[0])
    assert pixels.std() > 10 and int(pixels.max()) - int(pixels.min()) > 60  # not blank
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= 1  # what in-process fusion gives
    link = browser.execute_script("const a = document.getElementById('download'); return [a.href, a.getAttribute('download')]")
    assert link[0].startswith("blob:") and link[1] == "fused.png"
    browser.execute_script("const s = document.getElementById('slider'); s.value = 30; s.dispatchEvent(new Event('input'))")
    assert "70%" in browser.execute_script("return document.getElementById('before').style.clipPath")
    artifacts = Path(os.environ.get("MEFGAN_TEST_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    screenshot = artifacts / "serve_page.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")


def test_the_page_shows_the_servers_error_for_exposures_of_different_sizes(browser, server, demo_pair, tmp_path):
    other = write_image(tmp_path / "other.png", to_uint8(to_float(sample_pair("chelsea", max_side=48)[1])))
    upload(browser, server, demo_pair[0], other)
    wait_for(browser, "return document.getElementById('status').classList.contains('error') && document.getElementById('progress').hidden")
    status = browser.execute_script("return document.getElementById('status').textContent")
    assert status == "Error: instances[0]: exposures differ in size: instances[0].over_bytes 64x43, instances[0].under_bytes 48x32"


def test_the_page_fuses_three_exposures_through_exposures_bytes(browser, server, demo_pair, fuser, tmp_path):
    from mefgan_tf.images import read_image
    from mefgan_tf.samples import sample_photo

    middle = write_image(tmp_path / "middle.png", sample_photo("chelsea", max_side=64))
    paths = (*demo_pair, middle)
    upload(browser, server, *paths)
    wait_for(browser, "return document.getElementById('status').textContent.startsWith('Fused 3 exposures')")
    width, height, data = browser.execute_script(READ_FUSED)
    pixels = np.array(data, np.uint8).reshape(height, width, 4)[..., :3]
    expected = to_uint8(fuser([read_image(p) for p in paths]))
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= 1
    assert browser.execute_script("return document.getElementById('before-choice').options.length") == 3
