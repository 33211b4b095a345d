#!/usr/bin/env python3
"""End-to-end check of the admin console (/admin) in a real browser (headless Chromium via
Selenium), with JavaScript turned off: the console is server-rendered HTML whose forms are
plain POSTs answered by a redirect, and it promises to work without any script.

An anonymous visit to /admin lands on the sign-in form; a wrong password is refused on the
form; the admin signs in and, through the navigation only: finds the member by part of their
email, opens them, grants 25 credits with a reason (the notice shows and the balance rises by
exactly 25, with one more ledger row), moves them to the pro plan with a reason, then reads
the audit log (a `credits.adjust` entry with the reason, a `user.plan` entry naming pro,
newest first, the hash chain intact). It opens usage (two inline SVG charts), jobs, retention,
invites (makes an invite for pro and reads its sign-up link), policies, checking each page's
elements, its navigation and the hidden csrf field of every form; the browser must log no
Content Security Policy violation; finally it signs out and /admin shows the sign-in form.

    python3 -m pip install selenium
    python3 tests/e2e_console.py --url http://127.0.0.1:8080 \
        --email admin@localhost --password PASS --member-email dana.member@example.com \
        --out /tmp/e2e-console [--javascript]

The member must exist (any plan but pro; the admin may change their plan and credits). With
--javascript the browser runs with JavaScript on (it is off by default, and the script falls
back to on, saying so, only when chromedriver cannot drive Chromium without it).

Uses Debian's /usr/bin/chromium and /usr/bin/chromedriver (never Selenium Manager, so no
network is needed) through e2e_browser.py beside it, which holds the plumbing shared with
e2e_studio.py. On failure it saves screenshot.png, console.log and page.html into --out
and exits 1 with the reason; it prints one timing line per step. A successful run leaves
console-members.png (the member after the changes) and console-audit.png there (1280x900).
"""

import argparse
import json
import os
import sys
import urllib.parse

from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import e2e_browser
from e2e_browser import StepFailed, Steps, report_failure

WIDTH, HEIGHT = 1280, 900

# the pages of the navigation, in its order
NAV = ["/admin", "/admin/members", "/admin/invites", "/admin/usage", "/admin/jobs",
       "/admin/retention", "/admin/audit", "/admin/policies"]
CREDIT_REASON = "goodwill for the outage"
PLAN_REASON = "upgraded after the sales call"


def make_driver(javascript):
    """Headless Chromium at WIDTHxHEIGHT (e2e_browser.make_driver), with JavaScript off unless
    asked for."""
    prefs = {} if javascript else {"profile.managed_default_content_settings.javascript": 2}
    return e2e_browser.make_driver(prefs=prefs, window=(WIDTH, HEIGHT))


def fit_viewport(driver):
    """Makes the page area WIDTHxHEIGHT (headless Chromium takes room for a window frame out of
    --window-size), so screenshots are the full 1280x900. Best effort."""
    try:
        w, h = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        if (w, h) != (WIDTH, HEIGHT):
            size = driver.get_window_size()
            driver.set_window_size(size["width"] + WIDTH - w, size["height"] + HEIGHT - h)
    except WebDriverException:
        pass


def probe_driver(driver):
    """Whether chromedriver can drive this browser (find, read, type, click) at all, and
    whether page scripts run: (usable, scripts_run). Uses a data: page, not the server."""
    page = ("data:text/html,<p id=probe>off</p><input id=field>"
            "<script>document.getElementById('probe').textContent='on'</script>")
    try:
        driver.get(page)
        el = driver.find_element(By.ID, "probe")
        text = el.text.strip()
        el.is_displayed()
        field = driver.find_element(By.ID, "field")
        field.send_keys("x")
        field.click()
        return True, text == "on"
    except WebDriverException as e:
        print(f"[e2e]   chromedriver could not drive the page: {str(e).splitlines()[0]}",
              flush=True)
        return False, None


# ---- reading the page


def path_of(url):
    return urllib.parse.urlsplit(url).path.rstrip("/") or "/"


def here(driver):
    """The current page, for messages: path, status-ish title and h1."""
    try:
        h1 = [e.text.strip() for e in driver.find_elements(By.TAG_NAME, "h1")]
        errors = page_errors(driver)
        # a page that is not the console's (a JSON error, a bare status) says what it is
        body = "" if h1 else driver.find_element(By.TAG_NAME, "body").text.strip()[:300]
        return (f"at {urllib.parse.urlsplit(driver.current_url).path or '/'} "
                f"(title {driver.title!r}, h1 {h1}"
                + (f", errors {errors}" if errors else "")
                + (f", body {body!r}" if body else "") + ")")
    except WebDriverException:
        return "at an unreadable page"


def page_errors(driver):
    return [e.text.strip() for e in driver.find_elements(By.CSS_SELECTOR, ".error")
            if e.is_displayed() and e.text.strip()]


def wait_for(driver, what, cond, timeout=15):
    """Waits until cond(driver) is truthy, a missing element counting as not yet
    (e2e_browser.wait_for); StepFailed naming `what` (and the page) otherwise."""
    return e2e_browser.wait_for(driver, what, cond, timeout,
                                ignore=(StaleElementReferenceException, NoSuchElementException),
                                explain=lambda d: f"; {here(d)}")


def one(driver, css, what=None):
    """The element matching css; StepFailed (with the page) when there is none."""
    els = driver.find_elements(By.CSS_SELECTOR, css)
    if not els:
        raise StepFailed(f"no {what or css} on the page; {here(driver)}")
    return els[0]


def text(driver, css):
    return one(driver, css).text.strip()


def stale(element):
    """Whether element belongs to a page the browser has left."""
    try:
        element.tag_name
        return False
    except StaleElementReferenceException:
        return True
    except WebDriverException as e:
        if e2e_browser.navigating(e):
            return True
        raise


def after_navigation(driver, what, action, cond, timeout=15, errors_ok=False):
    """Runs action() (a click or a submit), waits for a new page (the old one goes stale),
    then for cond on it. Fails fast when the new page shows an error (unless errors_ok) or
    is an API error instead of a console page."""
    old = driver.find_element(By.TAG_NAME, "html")
    action()

    def done(d):
        if not stale(old):
            return False  # still the old page
        if not d.find_elements(By.TAG_NAME, "h1"):
            body = d.find_element(By.TAG_NAME, "body").text.strip()
            if body.startswith('{"error"'):
                raise StepFailed(f"{what}: the server answered with an API error instead of "
                                 f"a page; {here(d)}")
        errors = page_errors(d)
        if errors and not errors_ok:
            raise StepFailed(f"{what}: the page shows an error: {errors}; {here(d)}")
        return cond(d)
    return wait_for(driver, what, done, timeout)


def submit(driver, form_css):
    """Clicks the form's submit button, as a person would."""
    form = one(driver, form_css)
    buttons = form.find_elements(By.CSS_SELECTOR, "button[type=submit], input[type=submit], "
                                 "button:not([type])")
    if not buttons:
        raise StepFailed(f"{form_css} has no submit button; {here(driver)}")
    buttons[0].click()


def fill(driver, css, value):
    field = one(driver, css)
    field.clear()
    field.send_keys(value)


def choose(driver, css, value):
    """Selects the option `value` (by its value, else by its text) of the select at css."""
    select = Select(one(driver, css))
    for option in select.options:
        if value in (option.get_attribute("value"), option.text.strip()):
            if not option.is_selected():
                option.click()
            return
    raise StepFailed(f"{css} has no option {value!r}; it offers "
                     f"{[o.get_attribute('value') for o in select.options]}")


def nav_links(driver):
    """{path: element} of the links in nav#admin-nav."""
    nav = one(driver, "nav#admin-nav", "navigation (nav#admin-nav)")
    links = {}
    for a in nav.find_elements(By.TAG_NAME, "a"):
        href = a.get_attribute("href")
        if href:
            links.setdefault(path_of(href), a)
    return links


def check_chrome(driver, what):
    """What every signed-in page has: an h1, the navigation with its eight links, the sign-out
    form, no script, and a non-empty hidden csrf field in every POST form."""
    if not text(driver, "h1"):
        raise StepFailed(f"{what}: the h1 is empty; {here(driver)}")
    missing = [p for p in NAV if p not in nav_links(driver)]
    if missing:
        raise StepFailed(f"{what}: nav#admin-nav has no link to {missing} "
                         f"(it links {sorted(nav_links(driver))})")
    one(driver, "form#logout-form", "sign-out form (form#logout-form)")
    scripts = driver.find_elements(By.TAG_NAME, "script")
    if scripts:
        raise StepFailed(f"{what}: the page has {len(scripts)} <script> element(s); the console "
                         f"promises none; {here(driver)}")
    for form in driver.find_elements(By.TAG_NAME, "form"):
        if (form.get_attribute("method") or "get").lower() != "post":
            continue
        name = form.get_attribute("id") or form.get_attribute("action")
        csrf = form.find_elements(By.CSS_SELECTOR, "input[type=hidden][name=csrf]")
        if not csrf or not csrf[0].get_attribute("value"):
            raise StepFailed(f"{what}: the POST form {name!r} has no non-empty hidden csrf "
                             f"input; {here(driver)}")


def nav_to(driver, path, cond, what):
    """Follows the navigation's link to `path` and waits for cond on the new page."""
    link = nav_links(driver).get(path)
    if link is None:
        raise StepFailed(f"{what}: nav#admin-nav has no link to {path}; {here(driver)}")
    after_navigation(driver, f"{what} after following the link to {path}", link.click,
                     lambda d: path_of(d.current_url) == path and cond(d))
    check_chrome(driver, what)


def credits_of(driver):
    raw = text(driver, "#member-credits")
    try:
        return int(raw.replace(",", ""))
    except ValueError:
        raise StepFailed(f"#member-credits is not an integer: {raw!r}") from None


def ledger_rows(driver):
    return driver.find_elements(By.CSS_SELECTOR, "table#ledger tbody tr")


def audit_rows(driver):
    """[{seq, action, actor, target, detail}] of table#audit, in the page's order; a cell the
    row lacks is None."""
    rows = []
    for tr in driver.find_elements(By.CSS_SELECTOR, "table#audit tr[data-seq]"):
        row = {"seq": tr.get_attribute("data-seq")}
        for cls in ("action", "actor", "target", "detail"):
            found = tr.find_elements(By.CSS_SELECTOR, f"td.{cls}")
            row[cls] = found[0].text.strip() if found else None
        rows.append(row)
    return rows


def run(args, driver, log):
    state = {}  # what one step hands to the next
    base = args.url.rstrip("/")

    def drain_log():
        try:
            log.extend(driver.get_log("browser"))
        except WebDriverException:
            pass

    # Each decorated function runs at once, as a timed step; the browser's log is drained into
    # `log` after each.
    step = Steps(after=drain_log)

    def login_form(d):
        return (path_of(d.current_url) == "/admin/login"
                and d.find_element(By.CSS_SELECTOR, "form#login-form").is_displayed())

    def sign_in_with(password, what, cond, errors_ok=False):
        fill(driver, "form#login-form input[name=email]", args.email)
        fill(driver, "form#login-form input[name=password]", password)
        after_navigation(driver, what, lambda: submit(driver, "form#login-form"), cond,
                         errors_ok=errors_ok)

    @step("login-page")
    def _():
        driver.get(base + "/admin")
        wait_for(driver, "/admin to send an anonymous visitor to /admin/login with the "
                 "sign-in form", login_form)
        one(driver, "form#login-form input[name=email]")
        one(driver, "form#login-form input[name=password][type=password]")
        if driver.find_elements(By.CSS_SELECTOR, "nav#admin-nav"):
            raise StepFailed("the sign-in page shows the admin navigation to a visitor")

    @step("bad-password")
    def _():
        sign_in_with(args.password + " but wrong",
                     "the sign-in form again with an .error after a wrong password",
                     lambda d: d.find_element(By.CSS_SELECTOR, "form#login-form").is_displayed()
                     and page_errors(d), errors_ok=True)
        if driver.find_elements(By.CSS_SELECTOR, "nav#admin-nav"):
            raise StepFailed("a wrong password showed the admin navigation")

    @step("sign-in")
    def _():
        sign_in_with(args.password, "the overview at /admin after signing in",
                     lambda d: path_of(d.current_url) == "/admin"
                     and d.find_element(By.ID, "overview").is_displayed())
        check_chrome(driver, "overview")

    @step("members")
    def _():
        nav_to(driver, "/admin/members",
               lambda d: d.find_element(By.CSS_SELECTOR, "form#member-search")
               and d.find_element(By.CSS_SELECTOR, "table#members"), "members")
        search = one(driver, "form#member-search")
        if (search.get_attribute("method") or "get").lower() != "get":
            raise StepFailed("form#member-search is not a GET form")
        # part of the address: the local part without its first letter
        part = args.member_email.split("@")[0][1:]
        fill(driver, "form#member-search input[name=q]", part)

        def found(d):
            if "q=" not in urllib.parse.urlsplit(d.current_url).query:
                return False
            rows = d.find_elements(By.CSS_SELECTOR, "table#members tr[data-member-id]")
            emails = [r.find_element(By.CSS_SELECTOR, "a.member-link").text.strip()
                      for r in rows]
            return (rows, emails) if args.member_email in emails else False
        rows, emails = after_navigation(
            driver, f"the member {args.member_email} in table#members after searching "
            f"for {part!r}", lambda: submit(driver, "form#member-search"), found)
        stray = [e for e in emails if part.lower() not in e.lower()]
        if stray:
            raise StepFailed(f"searching for {part!r} also listed {stray}")
        row = rows[emails.index(args.member_email)]
        state["member_id"] = row.get_attribute("data-member-id")
        print(f"[e2e]   {len(rows)} member(s) for {part!r}; id {state['member_id']}", flush=True)

    @step("open-member")
    def _():
        member_id = state["member_id"]
        link = one(driver, f'table#members tr[data-member-id="{member_id}"] a.member-link')
        want = f"/admin/members/{member_id}"
        if path_of(link.get_attribute("href")) != want:
            raise StepFailed(f"the member's link goes to {link.get_attribute('href')}, "
                             f"not {want}")
        after_navigation(driver, "the member page", link.click,
                         lambda d: path_of(d.current_url) == want
                         and d.find_element(By.ID, "member-email").is_displayed())
        check_chrome(driver, "member page")
        if text(driver, "#member-email") != args.member_email:
            raise StepFailed(f"#member-email is {text(driver, '#member-email')!r}")
        status = text(driver, "#member-status")
        if status != "active":
            raise StepFailed(f"#member-status is {status!r}, not 'active'")
        plan = text(driver, "#member-plan")
        if plan not in ("free", "pro", "studio"):
            raise StepFailed(f"#member-plan is {plan!r}, not a plan")
        if plan == "pro":
            raise StepFailed("the member is on pro already; the plan change would prove nothing")
        # the forms of the contract, whether or not this run submits them
        for css in ("form#credits-form input[name=credits_delta]",
                    "form#credits-form input[name=reason]",
                    "form#plan-form select[name=plan]", "form#plan-form input[name=reason]",
                    "form#suspend-form input[type=hidden][name=suspended]",
                    "form#suspend-form input[name=reason]",
                    "form#delete-form input[type=checkbox][name=confirm]", "table#ledger"):
            one(driver, css)
        suspended = one(driver, "form#suspend-form input[name=suspended]").get_attribute("value")
        if suspended != "true":
            raise StepFailed(f"an active member's suspend form sends suspended={suspended!r}")
        options = [o.get_attribute("value")
                   for o in Select(one(driver, "form#plan-form select[name=plan]")).options]
        if sorted(options) != ["free", "pro", "studio"]:
            raise StepFailed(f"the plan select offers {options}")
        state["credits"] = credits_of(driver)
        state["ledger"] = len(ledger_rows(driver))
        print(f"[e2e]   plan {plan}, {state['credits']} credits, {state['ledger']} ledger "
              f"rows", flush=True)

    @step("credits")
    def _():
        want = f"/admin/members/{state['member_id']}"
        fill(driver, "form#credits-form input[name=credits_delta]", "25")
        fill(driver, "form#credits-form input[name=reason]", CREDIT_REASON)
        after_navigation(driver, "the member page with a notice after granting 25 credits",
                         lambda: submit(driver, "form#credits-form"),
                         lambda d: path_of(d.current_url) == want
                         and d.find_element(By.CSS_SELECTOR, "p#notice").text.strip())
        got = credits_of(driver)
        if got != state["credits"] + 25:
            raise StepFailed(f"#member-credits went from {state['credits']} to {got}, "
                             f"not up by 25")
        rows = len(ledger_rows(driver))
        if rows != state["ledger"] + 1:
            raise StepFailed(f"table#ledger has {rows} rows after the grant, "
                             f"{state['ledger']} before")
        print(f"[e2e]   notice: {text(driver, 'p#notice')!r}; {got} credits", flush=True)

    @step("plan")
    def _():
        want = f"/admin/members/{state['member_id']}"
        state["from_plan"] = text(driver, "#member-plan")
        choose(driver, "form#plan-form select[name=plan]", "pro")
        fill(driver, "form#plan-form input[name=reason]", PLAN_REASON)
        after_navigation(driver, "the member page with a notice after the plan change",
                         lambda: submit(driver, "form#plan-form"),
                         lambda d: path_of(d.current_url) == want
                         and d.find_element(By.CSS_SELECTOR, "p#notice").text.strip())
        if text(driver, "#member-plan") != "pro":
            raise StepFailed(f"#member-plan is {text(driver, '#member-plan')!r} after "
                             f"changing it to pro")
        if credits_of(driver) != state["credits"] + 25:
            raise StepFailed(f"the plan change moved the balance to {credits_of(driver)}")
        fit_viewport(driver)
        driver.save_screenshot(os.path.join(args.out, "console-members.png"))

    @step("audit")
    def _():
        nav_to(driver, "/admin/audit",
               lambda d: d.find_element(By.CSS_SELECTOR, "table#audit"), "audit")
        rows = audit_rows(driver)
        if not rows:
            raise StepFailed(f"table#audit has no tr[data-seq] rows; {here(driver)}")
        for row in rows:
            try:
                row["seq"] = int(row["seq"])
            except (TypeError, ValueError):
                raise StepFailed(f"an audit row has data-seq={row['seq']!r}") from None
            lacks = [c for c, v in row.items() if v is None]
            if lacks:
                raise StepFailed(f"audit row {row['seq']} has no td.{lacks[0]}: {row}")
        seqs = [r["seq"] for r in rows]
        if seqs != sorted(seqs, reverse=True):
            raise StepFailed(f"table#audit is not newest first: data-seq {seqs[:10]}")

        def summary():
            return [(r["action"], r["detail"][:80]) for r in rows[:8]]
        grant = [r for r in rows
                 if r["action"] == "credits.adjust" and CREDIT_REASON in r["detail"]]
        if not grant:
            raise StepFailed(f"no credits.adjust row whose detail has {CREDIT_REASON!r}; "
                             f"the newest rows: {summary()}")
        plan = [r for r in rows if r["action"] == "user.plan" and "pro" in r["detail"]]
        if not plan:
            raise StepFailed(f"no user.plan row whose detail mentions pro; the newest rows: "
                             f"{summary()}")
        grant, plan = grant[0], plan[0]
        if grant["seq"] > plan["seq"]:
            raise StepFailed(f"the credit grant (seq {grant['seq']}) is newer than the plan "
                             f"change made after it (seq {plan['seq']})")
        for row in (grant, plan):
            try:
                json.loads(row["detail"])
            except ValueError:
                raise StepFailed(f"the {row['action']} row's detail is not JSON: "
                                 f"{row['detail']!r}") from None
            # not promised by the contract: said, not failed
            if args.email not in row["actor"] and "admin" not in row["actor"]:
                print(f"[e2e]   note: the {row['action']} row's actor is {row['actor']!r}",
                      flush=True)
            if state["member_id"] not in row["target"] and args.member_email not in row["target"]:
                print(f"[e2e]   note: the {row['action']} row's target is {row['target']!r}",
                      flush=True)
        if PLAN_REASON not in plan["detail"]:
            raise StepFailed(f"the user.plan row's detail lacks the reason: {plan['detail']!r}")
        chain = text(driver, "#chain")
        if "intact" not in chain.lower():
            raise StepFailed(f"#chain says {chain!r}")
        print(f"[e2e]   {len(rows)} audit rows; chain: {chain!r}", flush=True)
        fit_viewport(driver)
        driver.save_screenshot(os.path.join(args.out, "console-audit.png"))

    @step("usage")
    def _():
        nav_to(driver, "/admin/usage",
               lambda d: d.find_element(By.CSS_SELECTOR, "svg#jobs-chart")
               and d.find_element(By.CSS_SELECTOR, "svg#credits-chart"), "usage")

    @step("jobs")
    def _():
        nav_to(driver, "/admin/jobs",
               lambda d: d.find_element(By.ID, "queue")
               and d.find_element(By.CSS_SELECTOR, "table#models"), "jobs")

    @step("retention")
    def _():
        nav_to(driver, "/admin/retention",
               lambda d: d.find_element(By.ID, "next-sweep")
               and d.find_element(By.CSS_SELECTOR, "table#due"), "retention")

    @step("invites")
    def _():
        nav_to(driver, "/admin/invites",
               lambda d: d.find_element(By.CSS_SELECTOR, "form#invite-form"), "invites")
        choose(driver, "form#invite-form select[name=plan]", "pro")
        link = after_navigation(
            driver, "#invite-link after making an invite for pro",
            lambda: submit(driver, "form#invite-form"),
            lambda d: d.find_element(By.ID, "invite-link").text.strip())
        if "invite=" not in link:
            raise StepFailed(f"#invite-link is {link!r}, with no invite=")
        check_chrome(driver, "invite made")
        print(f"[e2e]   invite link {link[:60]}…", flush=True)

    @step("policies")
    def _():
        nav_to(driver, "/admin/policies",
               lambda d: d.find_element(By.CSS_SELECTOR, "table#policies")
               and d.find_element(By.CSS_SELECTOR, "form#policy-form"), "policies")
        one(driver, "form#policy-form input[name=version]")
        one(driver, "form#policy-form textarea[name=body]")

    @step("overview")
    def _():
        nav_to(driver, "/admin", lambda d: d.find_element(By.ID, "overview"), "overview")

    @step("sign-out")
    def _():
        after_navigation(driver, "a page without the admin navigation after signing out",
                         lambda: submit(driver, "form#logout-form"),
                         lambda d: not d.find_elements(By.CSS_SELECTOR, "nav#admin-nav"))
        driver.get(base + "/admin")
        wait_for(driver, "/admin to show the sign-in form again after signing out", login_form)
        if driver.find_elements(By.CSS_SELECTOR, "nav#admin-nav"):
            raise StepFailed("/admin still shows the admin navigation after signing out")

    @step("csp")
    def _():
        csp = [e for e in log if "content security policy" in str(e.get("message", "")).lower()]
        if csp:
            raise StepFailed(f"the browser logged {len(csp)} Content Security Policy "
                             f"violation(s), first: {csp[0].get('message')}")
        print(f"[e2e]   {len(log)} browser log entries, none about CSP", flush=True)

    step.finish()


def start_browser(javascript):
    """A driver that works: without JavaScript unless asked (or unless chromedriver cannot
    drive Chromium that way, said on stdout)."""
    driver = make_driver(javascript)
    usable, scripts_run = probe_driver(driver)
    if not usable and not javascript:
        driver.quit()
        print("[e2e] NOTE: chromedriver cannot drive Chromium with JavaScript disabled; "
              "falling back to JavaScript enabled", flush=True)
        driver = make_driver(True)
        usable, scripts_run = probe_driver(driver)
    if not usable:
        driver.quit()
        raise RuntimeError("chromedriver cannot drive Chromium")
    if not javascript and scripts_run:
        print("[e2e] NOTE: page scripts still run although JavaScript was turned off",
              flush=True)
    print(f"[e2e] javascript: {'on' if scripts_run else 'off'}", flush=True)
    driver.get_log("browser")  # the probe page's entries are not the console's
    return driver


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="server URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("--email", required=True, help="an admin's email")
    ap.add_argument("--password", required=True, help="the admin's password")
    ap.add_argument("--member-email", required=True,
                    help="a member (not on pro) whose plan and credits the test changes")
    ap.add_argument("--out", required=True, help="folder for screenshots and failure evidence")
    ap.add_argument("--javascript", action="store_true",
                    help="run the browser with JavaScript on (off by default)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    try:
        driver = start_browser(args.javascript)
    except Exception as e:  # noqa: BLE001
        print(f"e2e FAILED: could not start Chromium: {e}", file=sys.stderr)
        return 1
    log = []  # the browser's log entries, drained after each step
    try:
        run(args, driver, log)
        return 0
    except Exception as e:  # noqa: BLE001
        return report_failure(driver, args.out, e, log)
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
