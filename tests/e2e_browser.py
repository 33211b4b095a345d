"""The browser plumbing that the Selenium end-to-end scripts (e2e_studio.py, e2e_console.py)
share: StepFailed, a headless Chromium driver from Debian's /usr/bin/chromium and
/usr/bin/chromedriver (never Selenium Manager, so no network is needed), wait_for, the Steps
timer that prints one line per step, and save_evidence / report_failure, which leave
screenshot.png, console.log and page.html in the --out folder when a run fails.

The scripts import it from beside them (run as `python3 tests/e2e_xxx.py`, tests/ is on
sys.path); each keeps its own prefs, window, default wait and page-specific helpers.
"""

import json
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import (
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class StepFailed(Exception):
    pass


def make_driver(prefs=None, window=(1280, 900)):
    """Headless Chromium at the window size (width, height), with the browser's log kept and
    Safe Browsing off; prefs are added to (or override) Chromium's preferences."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    width, height = window
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--no-first-run", "--disable-sync",
        "--disable-extensions", f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"safebrowsing.enabled": False, **(prefs or {})})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def navigating(error):
    """Whether a WebDriver error only means the page went away under us (a navigation in
    progress): DevTools' "node does not belong to the document" is not a stale-element error
    but means the same."""
    return "does not belong to the document" in str(error)


def wait_for(driver, what, cond, timeout, ignore=(StaleElementReferenceException,),
             explain=None):
    """Waits until cond(driver) is truthy and returns that value, counting an exception in
    `ignore` as not yet; StepFailed naming `what` otherwise, followed by explain(driver) (a
    string about the page) when given."""
    def safe(d):
        try:
            return cond(d)
        except ignore:
            return False
        except WebDriverException as e:
            if navigating(e):
                return False
            raise
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(safe)
    except TimeoutException:
        raise StepFailed(f"timed out after {timeout}s waiting for {what}"
                         + (explain(driver) if explain else "")) from None


class Steps:
    """A timer of named steps: `@steps("name")` runs the decorated function at once and prints
    one timing line for it (FAILED, and the exception goes on, when it raises); after(), when
    given, runs after every step, passed or failed. finish() prints the total."""

    def __init__(self, after=None):
        self.times = []  # (name, seconds)
        self.after = after

    def __call__(self, name):
        def deco(fn):
            t0 = time.monotonic()
            try:
                result = fn()
            except Exception:
                print(f"[e2e] {name:<12} {time.monotonic() - t0:6.2f}s FAILED", flush=True)
                raise
            finally:
                if self.after is not None:
                    self.after()
            dt = time.monotonic() - t0
            self.times.append((name, dt))
            print(f"[e2e] {name:<12} {dt:6.2f}s", flush=True)
            return result
        return deco

    def finish(self):
        total = sum(dt for _, dt in self.times)
        print(f"[e2e] ok: {len(self.times)} steps in {total:.1f}s", flush=True)


def save_evidence(driver, out, log=()):
    """Saves screenshot.png, console.log (the entries of `log`, then what the browser still
    holds) and page.html into out, each as far as it can; returns the paths saved."""
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
            for entry in list(log) + driver.get_log("browser"):
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


def report_failure(driver, out, error, log=()):
    """Saves the evidence (save_evidence) and says on stderr why the run failed (a StepFailed
    by its message, anything else with its type too) and what was saved; returns 1, the exit
    status."""
    reason = str(error) if isinstance(error, StepFailed) else f"{type(error).__name__}: {error}"
    saved = save_evidence(driver, out, log)
    print(f"e2e FAILED: {reason}", file=sys.stderr)
    if saved:
        print(f"e2e evidence: {', '.join(saved)}", file=sys.stderr)
    return 1
