#!/usr/bin/env python3
"""End-to-end check of the studio page in a real browser (headless Chromium via Selenium).

Drives the page the way people would. First a new member's life, through the page only (the
mails come from the server's outbox): sign up, open the verification link, ask for a password
reset and open its link, sign in, accept a new privacy policy from the banner (the admin
publishes it over the API), turn a consent on and see it in the history after a reload, edit
the profile, export their data and check the ZIP, change the password and sign in with the new
one, delete the account, and see that signing in fails. Then the admin: sign in, upload an
image, decompose it, hide the top layer, undo and redo, export a PSD, and check the PSD (with
psd_tools when installed), recolour a layer, then import the exported PSD as a new document.

    python3 -m pip install selenium        # psd-tools optional
    python3 tests/e2e_studio.py --url http://127.0.0.1:8080 \
        --email admin@localhost --password PASS --image tests/fixtures/... --out /tmp/e2e \
        --outbox DATA_DIR/outbox [--admin-key KEY] [--mail-base URL]

The server must allow open sign-up (accounts.registration = "open") and spool mail (no
mail.smtp_url). Every step fails when the page does.

Uses Debian's /usr/bin/chromium and /usr/bin/chromedriver (never Selenium Manager, so no
network is needed) through e2e_browser.py beside it, which holds the plumbing shared with
e2e_console.py. On failure it saves screenshot.png, console.log and page.html into --out
and exits 1 with the reason; it prints one timing line per step. A successful run leaves
signup.png, account.png and studio.png there for a human to look at.
"""

import argparse
import email
import email.policy
import email.utils
import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

from selenium.webdriver.common.by import By

import e2e_browser
from e2e_browser import StepFailed, Steps, report_failure


def start_browser(download_dir):
    """Headless Chromium (1280x900) that saves downloads into download_dir without asking."""
    driver = e2e_browser.make_driver(prefs={
        "download.default_directory": download_dir,
        "download.prompt_for_download": False,
        "download.directory_upgrade": True,
    })
    # Headless Chromium honours the download prefs only with an explicit behaviour on some
    # versions; set it through DevTools too.
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": download_dir})
    except Exception:  # noqa: BLE001 - best effort; the prefs above usually suffice
        pass
    return driver


def wait_for(driver, what, cond, timeout=30):
    """Waits until cond(driver) is truthy (e2e_browser.wait_for); StepFailed naming `what`,
    and the page's #status when it has one, otherwise."""
    return e2e_browser.wait_for(driver, what, cond, timeout, explain=status_note)


def status_text(driver):
    try:
        return driver.find_element(By.ID, "status").text.strip()
    except Exception:  # noqa: BLE001
        return ""


def status_note(driver):
    status = status_text(driver)
    return f" (page status: {status!r})" if status else ""


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


def displayed(driver, element_id):
    els = driver.find_elements(By.ID, element_id)
    return bool(els) and els[0].is_displayed()


def text_of(driver, element_id):
    return driver.find_element(By.ID, element_id).text.strip()


def fill(driver, element_id, value):
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)


# ---- the server, without the browser: plain HTTP for what a member cannot do from the page

def http(base, method, path, body=None, key=None, timeout=30):
    """(status, parsed JSON or None) of one request; never raises for an HTTP status."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, raw, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    parsed = None
    if raw and "json" in ctype:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
    return status, parsed


def serves_page(base, path):
    """Whether GET `path` answers with the studio page (HTML), as a link in a mail needs."""
    try:
        with urllib.request.urlopen(base.rstrip("/") + path, timeout=10) as r:
            return r.status == 200 and "text/html" in r.headers.get("Content-Type", "")
    except urllib.error.HTTPError:
        return False


def admin_credential(args):
    """A bearer key of the admin: --admin-key, else one made by signing in over HTTP."""
    if args.admin_key:
        return args.admin_key
    jar = urllib.request.HTTPCookieProcessor()
    opener = urllib.request.build_opener(jar)

    def call(path, body):
        req = urllib.request.Request(args.url.rstrip("/") + path, data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        with opener.open(req, timeout=30) as r:
            return json.loads(r.read() or b"null")
    call("/api/v1/auth/login", {"email": args.email, "password": args.password})
    return call("/api/v1/keys", {"name": "e2e studio"})["key"]


# ---- mail: the spooled .eml files of the outbox

def read_mails(outbox):
    """[(file name, To addresses, Subject, plain-text body)], oldest first (the names are
    time-ordered ids)."""
    found = []
    try:
        names = sorted(n for n in os.listdir(outbox)
                       if n.endswith(".eml") and not n.startswith("."))
    except FileNotFoundError:
        return []
    for name in names:
        with open(os.path.join(outbox, name), "rb") as f:
            msg = email.message_from_bytes(f.read(), policy=email.policy.default)
        to = [a.lower() for _, a in email.utils.getaddresses(msg.get_all("To", []))]
        part = msg.get_body(preferencelist=("plain",)) or msg
        found.append((name, to, str(msg.get("Subject", "")), part.get_content()))
    return found


def wait_mail(outbox, to, subject_has, seen=(), timeout=20):
    """The newest mail to `to` whose subject contains `subject_has` and whose file is not in
    `seen`: (file name, body)."""
    deadline = time.monotonic() + timeout
    while True:
        hits = [(n, body) for n, rcpt, subject, body in read_mails(outbox)
                if to.lower() in rcpt and subject_has.lower() in subject.lower() and n not in seen]
        if hits:
            return hits[-1]
        if time.monotonic() > deadline:
            have = [(n, rcpt, subject) for n, rcpt, subject, _ in read_mails(outbox)]
            raise StepFailed(f"no mail to {to} about {subject_has!r} in {outbox} within "
                             f"{timeout}s; the outbox has {have}")
        time.sleep(0.2)


def token_link(body, mail_base):
    """The `…/path?token=…` link in a mail body (checked against mail.base_url when given):
    (path with query, path)."""
    m = re.search(r"(https?://[^\s<>\"]+\?token=[^\s<>\"]+)", body)
    if not m:
        raise StepFailed(f"no …?token= link in the mail:\n{body}")
    link = m.group(1)
    if mail_base and not link.startswith(mail_base.rstrip("/") + "/"):
        raise StepFailed(f"the mail's link {link} does not start with mail.base_url {mail_base}")
    u = urllib.parse.urlsplit(link)
    return f"{u.path}?{u.query}", u.path


def run(args, driver, download_dir):
    state = {}  # what one step hands to the next

    # Each decorated function runs at once, as a timed step.
    step = Steps()

    @step("open")
    def _():
        driver.get(args.url)
        wait_for(driver, "the sign-in form or the studio",
                 lambda d: d.find_element(By.ID, "login-form").is_displayed()
                 or d.find_element(By.ID, "studio").is_displayed())

    def sign_in(who, password, what):
        """Signs in from the sign-in screen and waits for the studio."""
        fill(driver, "email", who)
        fill(driver, "password", password)
        driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()

        def signed_in(d):
            err = error_status(d)
            if err:
                raise StepFailed(f"{what}: {err}")
            return (d.find_element(By.ID, "studio").is_displayed()
                    and who in d.find_element(By.ID, "whoami").text)
        wait_for(driver, f"the studio after signing in as {who}", signed_in, 20)

    def wait_notice(what, has, timeout=20):
        """Waits for #notice to say `has` (not as an error); returns its text."""
        def cond(d):
            if not displayed(d, "notice"):
                return False
            text = text_of(d, "notice-text")
            if d.find_element(By.ID, "notice").get_attribute("data-kind") == "error":
                raise StepFailed(f"{what}: the page reports an error: {text}")
            return text if has.lower() in text.lower() else False
        return wait_for(driver, f"{what}: #notice saying {has!r}", cond, timeout)

    def open_mail_link(path_query, path):
        """Opens a link from a mail, at this server."""
        if not serves_page(args.url, path):
            raise StepFailed(f"the link in the mail ({path}) does not open the studio page")
        driver.get(args.url.rstrip("/") + path_query)

    def open_account():
        driver.find_element(By.ID, "account-open").click()
        wait_for(driver, "the account page",
                 lambda d: displayed(d, "account-page") and not displayed(d, "studio")
                 and d.find_element(By.ID, "profile-email").get_attribute("value"))
        # the consents come from their own request
        wait_for(driver, "the consents and their history",
                 lambda d: d.find_elements(By.CSS_SELECTOR, "#consent-history-rows tr"))

    def history_rows(d):
        return [(tr.get_attribute("data-kind"), tr.get_attribute("data-value"))
                for tr in d.find_elements(By.CSS_SELECTOR, "#consent-history-rows tr[data-kind]")]

    member = {
        "email": f"member-{int(time.time() * 1000) % 10**9}@example.com",
        "name": "Ada Member",
        "password": "first-pass-123",
    }
    outbox = args.outbox

    @step("signup")
    def _():
        if not displayed(driver, "signup-form"):
            raise StepFailed("signup: the sign-in screen has no sign-up form")
        wait_for(driver, "the minimum age in the age checkbox's label",
                 lambda d: re.fullmatch(r"I am at least \d+ years old",
                                        text_of(d, "signup-age-label")))
        link = driver.find_element(By.CSS_SELECTOR, "#signup-form a[href='/privacy']")
        if not link.is_displayed():
            raise StepFailed("signup: no visible link to /privacy in the sign-up form")
        fill(driver, "signup-email", member["email"])
        fill(driver, "signup-name", member["name"])
        fill(driver, "signup-password", member["password"])
        age = driver.find_element(By.ID, "signup-age")
        if age.get_attribute("required") is None:
            raise StepFailed("signup: the age checkbox is not required")
        age.click()
        driver.find_element(By.ID, "signup-submit").click()
        wait_notice("signup", "sent a link")
        driver.save_screenshot(os.path.join(args.out, "signup.png"))

    @step("verify-link")
    def _():
        name, body = wait_mail(outbox, member["email"], "confirm")
        state["seen_mail"] = {name}
        path_query, path = token_link(body, args.mail_base)
        if path != "/verify":
            raise StepFailed(f"verify-link: the verification mail links to {path}, not /verify")
        open_mail_link(path_query, path)
        wait_notice("verify-link", "is confirmed")
        if "token=" in driver.current_url:
            raise StepFailed(f"verify-link: the token stays in the address: {driver.current_url}")

    @step("reset-link")
    def _():
        driver.find_element(By.ID, "forgot-toggle").click()
        wait_for(driver, "the forgot-password form", lambda d: displayed(d, "forgot-form"))
        fill(driver, "forgot-email", member["email"])
        driver.find_element(By.CSS_SELECTOR, "#forgot-form button[type=submit]").click()
        wait_notice("reset-link", "mailed it a link")
        name, body = wait_mail(outbox, member["email"], "password", state["seen_mail"])
        state["seen_mail"].add(name)
        path_query, path = token_link(body, args.mail_base)
        if path != "/reset":
            raise StepFailed(f"reset-link: the reset mail links to {path}, not /reset")
        open_mail_link(path_query, path)
        wait_for(driver, "the choose-a-new-password form", lambda d: displayed(d, "reset-form"))
        member["password"] = "second-pass-456"
        fill(driver, "reset-password", member["password"])
        fill(driver, "reset-password2", member["password"])
        driver.find_element(By.CSS_SELECTOR, "#reset-form button[type=submit]").click()
        wait_notice("reset-link", "new password is set")
        if "token=" in driver.current_url or displayed(driver, "reset-form"):
            raise StepFailed("reset-link: the reset form or its token stayed after use")

    @step("member-in")
    def _():
        sign_in(member["email"], member["password"], "member-in")
        if displayed(driver, "policy-banner"):
            raise StepFailed("member-in: a new member is shown a policy banner: they accepted "
                             "the policy when signing up")

    @step("policy")
    def _():
        key = admin_credential(args)
        status, me = http(args.url, "GET", "/api/v1/me", key=key)
        if status != 200:
            raise StepFailed(f"policy: the admin's /me answered {status}")
        p = me["policy"]
        version = max(p["accepted"], p["current"], (p.get("pending") or {}).get("version", 0)) + 1
        status, body = http(args.url, "POST", "/api/v1/admin/policies",
                            {"version": version,
                             "body": "The studio now keeps job statistics per plan and day."},
                            key=key)
        if status != 201:
            raise StepFailed(f"policy: publishing version {version} answered {status}: {body}")
        driver.refresh()
        wait_for(driver, f"the policy banner for version {version}",
                 lambda d: displayed(d, "policy-banner")
                 and f"version {version}" in text_of(d, "policy-banner-text").lower()
                 and displayed(d, "studio"))
        link = driver.find_element(By.CSS_SELECTOR, "#policy-banner a[href='/privacy']")
        if not link.is_displayed():
            raise StepFailed("policy: the banner has no link to /privacy")
        driver.find_element(By.ID, "policy-accept").click()
        wait_for(driver, "the banner to go away after accepting",
                 lambda d: not displayed(d, "policy-banner") and not error_status(d))
        driver.refresh()
        # the banner is decided from the same /me answer that shows the studio
        wait_for(driver, "the studio after a reload", lambda d: displayed(d, "studio"))
        if displayed(driver, "policy-banner"):
            raise StepFailed("policy: the banner is back after a reload: the acceptance was lost")

    @step("consent")
    def _():
        open_account()
        meta = text_of(driver, "profile-meta")
        if "email address confirmed" not in meta:
            raise StepFailed(f"consent: the profile does not show the address as confirmed: "
                             f"{meta!r}")
        box = driver.find_element(By.ID, "consent-training")
        if box.is_selected():
            raise StepFailed("consent: training is on for a new member")
        before = history_rows(driver)
        box.click()
        wait_for(driver, "the training consent in the history",
                 lambda d: history_rows(d)[:1] == [("training", "true")]
                 and len(history_rows(d)) == len(before) + 1
                 and d.find_element(By.ID, "consent-training").is_enabled())
        driver.refresh()
        wait_for(driver, "the studio after a reload", lambda d: displayed(d, "studio"))
        open_account()
        if not driver.find_element(By.ID, "consent-training").is_selected():
            raise StepFailed("consent: training is off again after a reload")
        if history_rows(driver)[:1] != [("training", "true")]:
            raise StepFailed(f"consent: the history after a reload is {history_rows(driver)}")

    @step("profile")
    def _():
        member["name"] = "Ada Lovelace"
        fill(driver, "profile-name", member["name"])
        driver.find_element(By.ID, "profile-save").click()
        wait_for(driver, "the new name in the header",
                 lambda d: member["name"] in text_of(d, "whoami") and not error_status(d))
        new_email = "renamed-" + member["email"]
        fill(driver, "profile-email", new_email)
        driver.find_element(By.ID, "profile-save").click()
        wait_for(driver, "the new address shown as waiting for confirmation",
                 lambda d: displayed(d, "profile-pending")
                 and new_email in text_of(d, "profile-pending") and not error_status(d))
        if member["email"] not in text_of(driver, "whoami"):
            raise StepFailed("profile: the address changed before it was confirmed")
        name, body = wait_mail(outbox, new_email, "confirm", state["seen_mail"])
        state["seen_mail"].add(name)
        path_query, path = token_link(body, args.mail_base)
        open_mail_link(path_query, path)
        wait_notice("profile", "is confirmed")
        wait_for(driver, "the studio with the new address",
                 lambda d: displayed(d, "studio") and new_email in text_of(d, "whoami"))
        member["email"] = new_email
        open_account()
        if displayed(driver, "profile-pending"):
            raise StepFailed("profile: the new address is still shown as waiting")

    @step("export-data")
    def _():
        if not displayed(driver, "account-page"):
            open_account()
        driver.find_element(By.ID, "export-start").click()

        def ready(d):
            err = error_status(d)
            if err:
                raise StepFailed(f"export-data: the page reports an error: {err}")
            return displayed(d, "export-result")
        wait_for(driver, "the export's download link", ready, 90)
        link = driver.find_element(By.ID, "export-link")
        href = link.get_attribute("href") or ""
        if not re.search(r"/api/v1/me/exports/[^/?#]+$", href):
            raise StepFailed(f"export-data: the download link is {href!r}")
        if not re.search(r"\d", text_of(driver, "export-expires")):
            raise StepFailed("export-data: the link's expiry is not shown")
        before = set(os.listdir(download_dir))
        link.click()

        def downloaded(_d):
            names = [n for n in os.listdir(download_dir)
                     if n not in before and n.endswith(".zip")]
            return os.path.join(download_dir, names[0]) if names else False
        path = wait_for(driver, "the export ZIP download", downloaded, 60)
        with zipfile.ZipFile(path) as z:
            if "profile.json" not in z.namelist():
                raise StepFailed(f"export-data: no profile.json in the ZIP: {z.namelist()}")
            profile = json.loads(z.read("profile.json"))
        if member["email"] not in json.dumps(profile):
            raise StepFailed(f"export-data: profile.json does not name {member['email']}: "
                             f"{profile}")

    @step("password")
    def _():
        if not displayed(driver, "account-page"):
            open_account()
        # the account page as the member left it, for a human to look at: the whole of it
        driver.set_window_size(1280, 1500)
        driver.save_screenshot(os.path.join(args.out, "account.png"))
        driver.set_window_size(1280, 900)
        new_password = "third-pass-789"
        fill(driver, "current-password", member["password"])
        fill(driver, "new-password", new_password)
        driver.find_element(By.ID, "password-save").click()

        def changed(d):
            err = error_status(d)
            if err:
                raise StepFailed(f"password: the page reports an error: {err}")
            return "password changed" in status_text(d).lower()
        wait_for(driver, "the password to be changed", changed, 20)
        member["password"] = new_password
        driver.find_element(By.ID, "logout").click()
        wait_for(driver, "the sign-in screen", lambda d: displayed(d, "login-form"))
        sign_in(member["email"], member["password"], "password")

    @step("delete")
    def _():
        open_account()
        fill(driver, "delete-password", member["password"])
        driver.find_element(By.ID, "delete-confirm").click()
        driver.find_element(By.ID, "delete-submit").click()

        def receipt(d):
            err = error_status(d)
            if err:
                raise StepFailed(f"delete: the page reports an error: {err}")
            return displayed(d, "receipt-section") and displayed(d, "login-form")
        wait_for(driver, "the deletion receipt on the sign-in screen", receipt, 30)
        if text_of(driver, "receipt-email") != member["email"] \
                or not text_of(driver, "receipt-id") \
                or not re.search(r"\d", text_of(driver, "receipt-purge")):
            raise StepFailed(f"delete: the receipt is incomplete: "
                             f"{text_of(driver, 'receipt')!r}")
        fill(driver, "email", member["email"])
        fill(driver, "password", member["password"])
        driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        wait_for(driver, "signing in as the deleted member to fail",
                 lambda d: error_status(d) and not displayed(d, "studio"), 20)
        # a fresh page for the admin's steps (no stale error in #status)
        driver.get(args.url)
        wait_for(driver, "the sign-in screen", lambda d: displayed(d, "login-form"))

    @step("sign-in")
    def _():
        if driver.find_element(By.ID, "login-form").is_displayed():
            fill(driver, "email", args.email)
            fill(driver, "password", args.password)
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

    step.finish()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="studio URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("--email", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--image", required=True, help="image file to upload")
    ap.add_argument("--out", required=True, help="folder for failure evidence")
    ap.add_argument("--outbox", required=True,
                    help="the server's mail spool, <data_dir>/outbox (mail.smtp_url unset)")
    ap.add_argument("--admin-key", help="an API key of the admin (else one is made by signing "
                    "in as --email over HTTP), to publish a privacy policy")
    ap.add_argument("--mail-base", help="the server's mail.base_url, to check the mails' links")
    ap.add_argument("--decompose-timeout", type=float, default=180.0)
    args = ap.parse_args()
    if not os.path.isfile(args.image):
        print(f"e2e: no such image: {args.image}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    download_dir = tempfile.mkdtemp(prefix="e2e-downloads-")
    try:
        driver = start_browser(download_dir)
    except Exception as e:  # noqa: BLE001
        print(f"e2e FAILED: could not start Chromium: {e}", file=sys.stderr)
        return 1
    try:
        run(args, driver, download_dir)
        # the finished studio, for a human to look at
        driver.save_screenshot(os.path.join(args.out, "studio.png"))
        return 0
    except Exception as e:  # noqa: BLE001
        return report_failure(driver, args.out, e)
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
