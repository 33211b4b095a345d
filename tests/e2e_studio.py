#!/usr/bin/env python3
"""End-to-end check of the studio page in a real browser (headless Chromium via Selenium).

Drives the page the way a member would: sign in, upload an image, decompose it, hide the
top layer, undo and redo, export a PSD, and checks the PSD (with psd_tools when installed),
recolour a layer, then import the exported PSD as a new document.

    python3 -m pip install selenium        # psd-tools optional
    python3 tests/e2e_studio.py --url http://127.0.0.1:8080 \
        --email admin@localhost --password PASS --image tests/fixtures/... --out /tmp/e2e

Uses Debian's /usr/bin/chromium and /usr/bin/chromedriver (never Selenium Manager, so no
network is needed). On failure it saves screenshot.png, console.log and page.html into --out
and exits 1 with the reason; it prints one timing line per step.
"""

import argparse
import json
import os
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class StepFailed(Exception):
    pass


def make_driver(download_dir):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--no-first-run", "--disable-sync",
        "--disable-extensions", "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": download_dir,
        "download.prompt_for_download": False,
        "download.directory_upgrade": True,
        "safebrowsing.enabled": False,
    })
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    # Headless Chromium honours the download prefs only with an explicit behaviour on some
    # versions; set it through DevTools too.
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": download_dir})
    except Exception:  # noqa: BLE001 - best effort; the prefs above usually suffice
        pass
    return driver


def wait_for(driver, what, cond, timeout=30):
    """Waits until cond(driver) is truthy; StepFailed naming `what` otherwise."""
    def safe(d):
        try:
            return cond(d)
        except StaleElementReferenceException:
            return False
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(safe)
    except TimeoutException:
        status = status_text(driver)
        raise StepFailed(f"timed out after {timeout}s waiting for {what}"
                         + (f" (page status: {status!r})" if status else "")) from None


def status_text(driver):
    try:
        return driver.find_element(By.ID, "status").text.strip()
    except Exception:  # noqa: BLE001
        return ""


def error_status(driver):
    """The #status text when the page is showing an error, else None."""
    try:
        el = driver.find_element(By.ID, "status")
        if el.get_attribute("data-kind") == "error" and el.text.strip():
            return el.text.strip()
    except Exception:  # noqa: BLE001
        pass
    return None


def doc_state(driver):
    """(revision, idle, [(layer_id, checked)] front-most first) of the open document."""
    doc = driver.find_element(By.ID, "document")
    rev = doc.get_attribute("data-revision")
    idle = doc.get_attribute("aria-busy") != "true"
    layers = [(li.get_attribute("data-layer-id"),
               li.find_element(By.CSS_SELECTOR, "input[type=checkbox].visible").is_selected())
              for li in driver.find_elements(By.CSS_SELECTOR, "#layers li[data-layer-id]")]
    return (int(rev) if rev not in (None, "") else None), idle, layers


def wait_settled(driver, what, pred, timeout=60):
    """Waits for an idle document whose state satisfies pred(rev, layers); fails fast on an
    error shown in #status."""
    def cond(d):
        err = error_status(d)
        if err:
            raise StepFailed(f"{what}: the page reports an error: {err}")
        rev, idle, layers = doc_state(d)
        return (rev, layers) if idle and rev is not None and pred(rev, layers) else False
    return wait_for(driver, what, cond, timeout)


def top_visible(layers, layer_id):
    return dict(layers)[layer_id]


def run(args, driver, download_dir):
    steps = []  # (name, seconds)
    state = {}  # what one step hands to the next

    # Each decorated function runs at once, as a timed step.

    def step(name):
        def deco(fn):
            t0 = time.monotonic()
            try:
                result = fn()
            except Exception:
                print(f"[e2e] {name:<12} {time.monotonic() - t0:6.2f}s FAILED", flush=True)
                raise
            dt = time.monotonic() - t0
            steps.append((name, dt))
            print(f"[e2e] {name:<12} {dt:6.2f}s", flush=True)
            return result
        return deco

    @step("open")
    def _():
        driver.get(args.url)
        wait_for(driver, "the sign-in form or the studio",
                 lambda d: d.find_element(By.ID, "login-form").is_displayed()
                 or d.find_element(By.ID, "studio").is_displayed())

    @step("sign-in")
    def _():
        if driver.find_element(By.ID, "login-form").is_displayed():
            driver.find_element(By.ID, "email").send_keys(args.email)
            driver.find_element(By.ID, "password").send_keys(args.password)
            driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()

        def signed_in(d):
            err = error_status(d)
            if err:
                raise StepFailed(f"sign-in: {err}")
            return (d.find_element(By.ID, "studio").is_displayed()
                    and args.email in d.find_element(By.ID, "whoami").text)
        wait_for(driver, "the studio after signing in", signed_in, 20)

    @step("upload")
    def _():
        before = {li.get_attribute("data-image-id")
                  for li in driver.find_elements(By.CSS_SELECTOR, "#images li[data-image-id]")}
        driver.find_element(By.ID, "upload-input").send_keys(os.path.abspath(args.image))

        def new_image(d):
            err = error_status(d)
            if err:
                raise StepFailed(f"upload: {err}")
            ids = [li.get_attribute("data-image-id")
                   for li in d.find_elements(By.CSS_SELECTOR, "#images li[data-image-id]")]
            fresh = [i for i in ids if i not in before]
            return fresh[0] if fresh else False
        image_id = wait_for(driver, "the uploaded image in #images", new_image, 30)
        state["image_id"] = image_id

    @step("decompose")
    def _():
        sel = f'#images li[data-image-id="{state["image_id"]}"] button.decompose'
        wait_for(driver, "an enabled Decompose button",
                 lambda d: d.find_element(By.CSS_SELECTOR, sel).is_enabled())
        driver.find_element(By.CSS_SELECTOR, sel).click()
        rev, layers = wait_settled(driver, "the document's layers",
                                   lambda rev, layers: len(layers) > 0, args.decompose_timeout)
        if len(layers) < 2:
            raise StepFailed(f"decompose: expected at least 2 layers, got {len(layers)}")
        state["layers"] = layers
        state["rev"] = rev
        wait_for(driver, "the preview canvas to be drawn",
                 lambda d: d.execute_script(
                     "const c=document.getElementById('preview');return c.width>0&&c.height>0;"))
        print(f"[e2e]   document revision {rev}, {len(layers)} layers", flush=True)

    @step("hide-top")
    def _():
        top_id, checked = state["layers"][0]
        if not checked:
            raise StepFailed("hide-top: the top layer is already hidden after decomposition")
        state["top"] = top_id
        driver.find_element(
            By.CSS_SELECTOR, f'#layers li[data-layer-id="{top_id}"] input.visible').click()
        rev0 = state["rev"]
        rev, layers = wait_settled(
            driver, "the document to come back with the top layer hidden",
            lambda rev, layers: rev > rev0 and not top_visible(layers, top_id), 60)
        state["rev"] = rev

    @step("undo")
    def _():
        top_id = state["top"]
        wait_for(driver, "an enabled Undo button",
                 lambda d: d.find_element(By.ID, "undo").is_enabled())
        driver.find_element(By.ID, "undo").click()
        rev, layers = wait_settled(
            driver, "undo to show the top layer again",
            lambda rev, layers: top_visible(layers, top_id), 60)
        state["rev"] = rev

    @step("redo")
    def _():
        top_id = state["top"]
        wait_for(driver, "an enabled Redo button",
                 lambda d: d.find_element(By.ID, "redo").is_enabled())
        driver.find_element(By.ID, "redo").click()
        rev, layers = wait_settled(
            driver, "redo to hide the top layer again",
            lambda rev, layers: not top_visible(layers, top_id), 60)
        state["rev"] = rev
        state["layers"] = layers

    @step("export-psd")
    def _():
        link = driver.find_element(By.CSS_SELECTOR, "a[data-format=psd]")
        href = link.get_attribute("href") or ""
        if "format=psd" not in href:
            raise StepFailed(f"export-psd: the PSD link has no export href ({href!r})")
        link.click()

        def downloaded(_d):
            names = [n for n in os.listdir(download_dir) if n.endswith(".psd")]
            return os.path.join(download_dir, names[0]) if names else False
        path = wait_for(driver, "the .psd download", downloaded, 60)
        with open(path, "rb") as f:
            head = f.read(4)
        if head != b"8BPS":
            raise StepFailed(f"export-psd: {path} does not start with 8BPS (got {head!r})")
        state["psd"] = path

    @step("check-psd")
    def _():
        try:
            from psd_tools import PSDImage
        except ImportError:
            print("[e2e]   psd_tools not installed; checked the signature only", flush=True)
            return
        psd = PSDImage.open(state["psd"])
        psd_layers = list(psd)  # top-level layers, bottom to top
        want = state["layers"]  # front-most first, as the page shows them
        if len(psd_layers) != len(want):
            raise StepFailed(f"check-psd: {len(psd_layers)} layers in the PSD, "
                             f"{len(want)} in the document")
        front_psd = list(reversed(psd_layers))
        names = [e.text.strip() for e in driver.find_elements(By.CSS_SELECTOR, "#layers li .name")]
        if names != [layer.name for layer in front_psd]:
            raise StepFailed(f"check-psd: PSD layer names {[x.name for x in front_psd]} "
                             f"differ from the page's {names}")
        for i, ((_, visible), layer) in enumerate(zip(want, front_psd)):
            if bool(layer.visible) != visible:
                raise StepFailed(f"check-psd: layer {i} from the front ({layer.name!r}) is "
                                 f"{'visible' if layer.visible else 'hidden'} in the PSD, "
                                 f"{'visible' if visible else 'hidden'} in the document")

    @step("recolor")
    def _():
        # a visible layer other than the background (any non-background one if none is)
        picks = [(li.find_element(By.CSS_SELECTOR, "button.pick"),
                  li.find_element(By.CSS_SELECTOR, "input.visible").is_selected())
                 for li in driver.find_elements(By.CSS_SELECTOR, "#layers li[data-layer-id]")]
        picks = [(b, vis) for b, vis in picks
                 if b.find_element(By.CSS_SELECTOR, ".kind").text.strip() != "background"]
        target = next((b for b, vis in picks if vis), picks[0][0] if picks else None)
        if target is None:
            raise StepFailed("recolor: the document has no layer other than the background")
        layer_id = target.get_attribute("data-layer-id")
        target.click()
        wait_for(driver, "the layer to be selected",
                 lambda d: "selected" in d.find_element(
                     By.CSS_SELECTOR, f'#layers li[data-layer-id="{layer_id}"]')
                 .get_attribute("class").split()
                 and d.find_element(By.ID, "layer-props").is_displayed())
        driver.execute_script(
            "const c=document.getElementById('recolor-color');c.value='#cc2244';"
            "c.dispatchEvent(new Event('input',{bubbles:true}));"
            "c.dispatchEvent(new Event('change',{bubbles:true}));")
        rev0 = state["rev"]
        wait_for(driver, "an enabled Apply colour button",
                 lambda d: d.find_element(By.ID, "recolor-apply").is_enabled())
        driver.find_element(By.ID, "recolor-apply").click()
        rev, layers = wait_settled(driver, "the recoloured document",
                                   lambda rev, layers: rev == rev0 + 1, 60)
        if len(layers) != len(state["layers"]):
            raise StepFailed(f"recolor: {len(layers)} layers after recolouring, "
                             f"{len(state['layers'])} before")
        title = driver.find_element(By.ID, "undo").get_attribute("title") or ""
        if "recolor" not in title.lower():
            raise StepFailed(f"recolor: the Undo button's title does not name the op ({title!r})")
        state["rev"] = rev

    @step("import")
    def _():
        old_id = driver.find_element(By.ID, "document").get_attribute("data-document-id")
        want = len(state["layers"])
        driver.find_element(By.ID, "import-input").send_keys(os.path.abspath(state["psd"]))

        def imported(d):
            err = error_status(d)
            if err:
                raise StepFailed(f"import: the page reports an error: {err}")
            doc = d.find_element(By.ID, "document")
            new_id = doc.get_attribute("data-document-id")
            if not new_id or new_id == old_id or doc.get_attribute("aria-busy") == "true":
                return False
            return new_id
        new_id = wait_for(driver, "the imported document to open", imported, 60)
        rev, layers = wait_settled(driver, "the imported document's layers",
                                   lambda rev, layers: len(layers) > 0, 30)
        if len(layers) != want:
            raise StepFailed(f"import: {len(layers)} layers in the imported document, "
                             f"{want} in the exported one")
        wait_for(driver, "the imported document in #documents",
                 lambda d: d.find_elements(
                     By.CSS_SELECTOR, f'#documents li.current[data-document-id="{new_id}"]'))

    total = sum(dt for _, dt in steps)
    print(f"[e2e] ok: {len(steps)} steps in {total:.1f}s", flush=True)


def save_evidence(driver, out):
    os.makedirs(out, exist_ok=True)
    saved = []
    try:
        p = os.path.join(out, "screenshot.png")
        if driver.save_screenshot(p):
            saved.append(p)
    except Exception as e:  # noqa: BLE001
        print(f"[e2e] could not save a screenshot: {e}", file=sys.stderr)
    try:
        p = os.path.join(out, "console.log")
        with open(p, "w") as f:
            for entry in driver.get_log("browser"):
                f.write(json.dumps(entry) + "\n")
        saved.append(p)
    except Exception as e:  # noqa: BLE001
        print(f"[e2e] could not save the console log: {e}", file=sys.stderr)
    try:
        p = os.path.join(out, "page.html")
        with open(p, "w") as f:
            f.write(driver.page_source)
        saved.append(p)
    except Exception:  # noqa: BLE001
        pass
    return saved


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="studio URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("--email", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--image", required=True, help="image file to upload")
    ap.add_argument("--out", required=True, help="folder for failure evidence")
    ap.add_argument("--decompose-timeout", type=float, default=180.0)
    args = ap.parse_args()
    if not os.path.isfile(args.image):
        print(f"e2e: no such image: {args.image}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    download_dir = tempfile.mkdtemp(prefix="e2e-downloads-")
    try:
        driver = make_driver(download_dir)
    except Exception as e:  # noqa: BLE001
        print(f"e2e FAILED: could not start Chromium: {e}", file=sys.stderr)
        return 1
    try:
        run(args, driver, download_dir)
        # the finished studio, for a human to look at
        driver.save_screenshot(os.path.join(args.out, "studio.png"))
        return 0
    except Exception as e:  # noqa: BLE001
        reason = str(e) if isinstance(e, StepFailed) else f"{type(e).__name__}: {e}"
        saved = save_evidence(driver, args.out)
        print(f"e2e FAILED: {reason}", file=sys.stderr)
        if saved:
            print(f"e2e evidence: {', '.join(saved)}", file=sys.stderr)
        return 1
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
