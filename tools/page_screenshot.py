"""The README's picture of the `mefgan serve` page: the shipped generator fusing the demo pair.

Starts `mefgan serve` on a free 127.0.0.1 port, opens the page in Debian's headless Chromium
(`make browser-deps`), uploads the astronaut demo pair, waits for the fusion and saves a JPEG.

    .venv/bin/python tools/page_screenshot.py --out docs/serve_page.jpg
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
)


def main() -> int:
    import cv2
    import numpy as np
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from mefgan_tf.images import write_image
    from mefgan_tf.samples import sample_pair

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "serve_page.jpg"))
    parser.add_argument("--image", default="astronaut")
    parser.add_argument("--max-side", type=int, default=384)
    parser.add_argument("--window", default="1200,760")
    parser.add_argument("--quality", type=int, default=82)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mefgan-page-"))
    under, over = sample_pair(args.image, max_side=args.max_side)
    files = [write_image(work / "under.png", under), write_image(work / "over.png", over)]
    server = subprocess.Popen(
        [sys.executable, "-m", "mefgan_tf.cli", "serve", "--port", "0", "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        url = None
        for line in server.stdout:
            match = re.search(r"listening on (http://\S+?)/ ", line)
            if match:
                url = match.group(1)
                break
        if url is None:
            raise SystemExit("mefgan serve did not start")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in (*FLAGS, f"--window-size={args.window}", f"--user-data-dir={work / 'profile'}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"))
        try:
            driver.get(url + "/")
            driver.find_element(By.ID, "files").send_keys("\n".join(str(f) for f in files))
            WebDriverWait(driver, 60).until(lambda d: not d.find_element(By.ID, "fuse").get_property("disabled"))
            driver.find_element(By.ID, "fuse").click()
            WebDriverWait(driver, 300).until(
                lambda d: d.execute_script("return document.getElementById('status').textContent.startsWith('Fused')")
            )
            png = driver.get_screenshot_as_png()
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait(timeout=60)
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    Path(args.out).write_bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, args.quality])[1].tobytes())
    print(f"{args.out}: {image.shape[1]}x{image.shape[0]}, {Path(args.out).stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
