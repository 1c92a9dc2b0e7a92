"""The explorer page of `vae-cpu serve` in a real browser (headless Chromium through
Selenium): it loads without a JavaScript error, an attribute slider moved with the
keyboard changes the edited face, and the latency from slider input to the new image is
reported. Then a burst of decode requests must neither crash the server nor grow its
memory. Usage: serve_browser_check.py URL SERVER_PID [SCREENSHOT.png]"""

import json
import os
import struct
import sys
import tempfile
import threading
import time
import urllib.request
import zlib

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

url, pid = sys.argv[1], int(sys.argv[2])
screenshot = sys.argv[3] if len(sys.argv) > 3 else None


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    fail("no VmRSS for the server")


def browser():
    opts = webdriver.ChromeOptions()
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1480"]:
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts)


def edited_src(driver):
    return driver.find_element(By.ID, "face-edited").get_attribute("src")


def check_page(driver):
    driver.get(url)
    wait = WebDriverWait(driver, 60)
    wait.until(lambda d: d.execute_script("return window.vaeExplorer && window.vaeExplorer.ready"))
    wait.until(lambda d: d.execute_script("return window.vaeExplorer.edits") >= 1)
    before = edited_src(driver)
    driver.find_element(By.ID, "attr-add").click()
    slider = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#attr-sliders input[type=range]"))
    name = slider.get_attribute("data-attribute")
    edits = driver.execute_script("return window.vaeExplorer.edits")
    shown_before = len(driver.execute_script("return window.vaeExplorer.latencies"))
    for _ in range(25):
        slider.send_keys(Keys.ARROW_RIGHT)
    wait.until(lambda d: d.execute_script("return window.vaeExplorer.edits") > edits)
    time.sleep(1.0)  # the last coalesced edit lands
    after = edited_src(driver)
    if after == before:
        fail(f"moving the {name} slider did not change the edited face")
    # One step at a time: the latency of a single slider move, nothing queued.
    for _ in range(10):
        edits = driver.execute_script("return window.vaeExplorer.edits")
        slider.send_keys(Keys.ARROW_LEFT)
        wait.until(lambda d: d.execute_script("return window.vaeExplorer.edits") > edits)
    check_other_tools(driver, wait)
    stats = driver.execute_script("return window.vaeExplorer")
    if stats["errors"]:
        fail(f"errors on the page: {stats['errors']}")
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    if severe:
        fail(f"browser console errors: {severe}")
    burst_lat = sorted(stats["latencies"][shown_before:-10])
    single = sorted(stats["latencies"][-10:])
    print(f"{name} slider: 25 fast key presses showed {len(burst_lat)} images, "
          f"input -> image median {burst_lat[len(burst_lat) // 2]:.1f} ms; "
          f"10 single steps: median {single[5]:.1f} ms, max {single[-1]:.1f} ms")
    if screenshot:
        driver.save_screenshot(screenshot)
        print(f"wrote {screenshot}")
    check_uploads(driver, wait)


def png_bytes(width, height):
    """A valid RGB PNG: a color gradient."""
    def row(y):
        pixels = (bytes((x * 255 // width, y * 255 // height, 128)) for x in range(width))
        return b"\0" + b"".join(pixels)  # filter type 0, then the RGB bytes
    rows = b"".join(row(y) for y in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def check_uploads(driver, wait):
    """A bad file is a clear error on the page; a good one becomes the face."""
    folder = tempfile.mkdtemp()
    bad, good = os.path.join(folder, "bad.jpg"), os.path.join(folder, "good.png")
    with open(bad, "wb") as f:
        f.write(b"not an image at all")
    with open(good, "wb") as f:
        f.write(png_bytes(60, 80))
    upload = driver.find_element(By.ID, "upload")
    upload.send_keys(bad)
    wait.until(lambda d: d.find_element(By.ID, "error").is_displayed())
    message = driver.find_element(By.ID, "error").text
    if "the uploaded file" not in message:
        fail(f"a bad upload showed: {message!r}")
    original = driver.find_element(By.ID, "face-original").get_attribute("src")
    upload.send_keys(good)
    wait.until(lambda d: d.find_element(By.ID, "face-original").get_attribute("src") != original)
    print(f"uploads: a bad file shows \"{message}\"; a PNG becomes the face")


def check_other_tools(driver, wait):
    """A picked face replaces the input; the scrubber walks between A and B."""
    original = driver.find_element(By.ID, "face-original").get_attribute("src")
    driver.find_elements(By.CSS_SELECTOR, "#picker img")[3].click()
    wait.until(lambda d: d.find_element(By.ID, "face-original").get_attribute("src") != original)
    scrubber = driver.find_element(By.ID, "scrubber")
    wait.until(lambda d: scrubber.is_enabled())
    start = driver.find_element(By.ID, "interp-frame").get_attribute("src")
    for _ in range(5):
        scrubber.send_keys(Keys.ARROW_RIGHT)
    if driver.find_element(By.ID, "interp-frame").get_attribute("src") == start:
        fail("the interpolation scrubber did not change the frame")
    # t-SNE computes on the server's own thread: the sliders keep answering meanwhile.
    Select(driver.find_element(By.ID, "map-projection")).select_by_value("tsne")
    slider = driver.find_element(By.CSS_SELECTOR, "#dim-sliders input[type=range]")
    edits = driver.execute_script("return window.vaeExplorer.edits")
    slider.send_keys(Keys.ARROW_RIGHT)
    wait.until(lambda d: d.execute_script("return window.vaeExplorer.edits") > edits)
    during = driver.execute_script("return window.vaeExplorer.map") != "tsne"
    wait.until(lambda d: d.execute_script("return window.vaeExplorer.map") == "tsne")
    print(f"t-SNE map drawn; a slider answered {'while it computed' if during else 'after it'}")


def post(path, body):
    req = urllib.request.Request(url.rstrip("/") + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status


def burst(latent, n=400, threads=8):
    statuses, errors = [], []

    def worker(k):
        for i in range(k, n, threads):
            try:
                z = [[((i * 7 + j) % 13) / 4.0 - 1.5 for j in range(latent)]]
                statuses.append(post("/api/decode?channel=burst", {"z": z}))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return statuses, errors


def check_burst():
    with urllib.request.urlopen(url.rstrip("/") + "/api/info", timeout=60) as r:
        latent = json.load(r)["latent"]
    burst(latent, n=100)  # warm up the allocator
    start = rss_kib()
    for _ in range(3):
        statuses, errors = burst(latent)
        if errors:
            fail(f"burst: {len(errors)} failed requests, e.g. {errors[0]}")
    grown = (rss_kib() - start) / 1024
    skipped = statuses.count(204)
    print(f"burst: 3 x 400 decode requests from 8 threads, {skipped} of the last 400 superseded; "
          f"server memory {start / 1024:.0f} MiB -> grew {grown:.1f} MiB")
    if grown > 64:
        fail(f"the server grew {grown:.1f} MiB over the bursts")


driver = browser()
try:
    check_page(driver)
finally:
    driver.quit()
check_burst()
print("browser check passed")
