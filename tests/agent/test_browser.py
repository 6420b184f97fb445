"""End to end in a real browser: Playwright driving Debian's Chromium against the app served by
uvicorn on the test database. Screenshots land in test-artifacts/agent/.

    agent: sign in → search CNIC → send code → read it from the outbox → verify (sending and
           verifying by keyboard alone) → payments
           → file a grievance → escalate it → refused the dashboard → a post without a token refused
    supervisor: escalated queue → assign, in progress → dashboard
    admin: audit log shows the agent's view of the record, masked
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from api.outbox.senders import build_senders
from api.outbox.service import deliver_due
from tests.agent.conftest import PASSWORD
from tests.agent.test_dashboard import add_messages
from tests.agent.test_grievances import file
from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE, NOT_ELIGIBLE, UNDER_REVIEW
from tests.faults.services import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "agent"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is missing: `apt-get install chromium` (CI installs it)",
    ),
]


@pytest.fixture
async def live_server(settings, staff, redis) -> AsyncIterator[str]:
    """The app served by uvicorn in a thread (its own event loop), on the test database."""
    from api.main import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, name="uvicorn-e2e", daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 15)


async def otp_from_outbox(db, settings, phone: str) -> str:
    """Deliver the outbox to the console sender, then read the code from its JSON lines."""
    for _ in range(50):
        await deliver_due(db, build_senders(settings), worker_id="e2e")
        path = settings.console_outbox
        if path.exists():
            for line in reversed(path.read_text(encoding="utf-8").splitlines()):
                record = json.loads(line)
                if record["to"] == phone and record["kind"] == "otp":
                    return re.search(r"(?<!\d)\d{6}(?!\d)", record["body"]).group(0)
        await asyncio.sleep(0.1)
    raise AssertionError("no code reached the console outbox")


async def test_the_console_end_to_end(live_server, registry, settings):
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    # Some traffic and complaints, so the dashboard has something to draw.
    await add_messages(registry)
    await file(registry, settings, cnic=NOT_ELIGIBLE, days_ago=10, district="Karachi Central")
    await file(registry, settings, cnic=UNDER_REVIEW, district="Peshawar", category="other")

    base = live_server
    csp_errors: list[str] = []

    async def shot(page, name: str) -> None:
        await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    async def sign_in(context, username: str):
        page = await context.new_page()
        page.on(
            "console",
            lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None,
        )
        await page.goto(f"{base}/agent")
        await expect(page).to_have_url(re.compile(r"/agent/login"))
        await page.get_by_label("Username").fill(username)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="Find a caller")).to_be_visible()
        return page

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        viewport = {"width": 1280, "height": 900}
        try:
            # -- the agent ---------------------------------------------------------------
            agent_context = await browser.new_context(viewport=viewport, locale="en-GB")
            login = await agent_context.new_page()
            await login.goto(f"{base}/agent/login")
            await shot(login, "01-login")
            await login.get_by_role("link", name="اردو").click()
            await expect(login.locator("html")).to_have_attribute("dir", "rtl")
            await expect(login.get_by_label("صارف نام")).to_be_visible()
            await shot(login, "02-login-urdu")
            await login.get_by_role("link", name="English").click()
            await expect(login.locator("html")).to_have_attribute("dir", "ltr")
            await login.close()

            page = await sign_in(agent_context, "amina")
            await page.get_by_label("CNIC").fill("35202-1234567-2")
            await page.get_by_role("button", name="Look up").click()
            await expect(page.locator(".badge-eligible")).to_have_text("Eligible")
            await expect(page.get_by_text("35202-*******-2")).to_be_visible()
            await expect(page.get_by_text("Nasreen")).to_have_count(0)
            await shot(page, "03-caller-coarse")

            # Keyboard only: each step leaves the focus on the next, so Enter moves the call on.
            await expect(page.get_by_role("button", name="Send code")).to_be_focused()
            await page.keyboard.press("Enter")
            await expect(page.get_by_text("Code sent to +92300****567.").first).to_be_visible()
            await expect(page.get_by_label("Code the caller reads back")).to_be_focused()
            code = await otp_from_outbox(registry, settings, ELIGIBLE_PHONE)
            await page.keyboard.type(code)
            await page.keyboard.press("Enter")
            await expect(page.get_by_text("Caller verified by code.")).to_be_visible()
            await expect(page.get_by_text("Nasreen Bibi")).to_be_visible()
            payments = page.get_by_role("region", name="Payments")
            await expect(payments.get_by_text("Govt Girls High School, Ichhra")).to_be_visible()
            await expect(payments.get_by_text("HBL Konnect agent, Ichhra Bazaar")).to_be_visible()
            await expect(payments.locator("tr.current")).to_contain_text("2026-Q4")
            await expect(payments.locator("tr.current")).to_contain_text("13,500")
            await shot(page, "04-caller-verified")
            await page.get_by_role("link", name="اردو").click()
            await expect(page.locator("html")).to_have_attribute("dir", "rtl")
            await expect(page.get_by_role("heading", name="ادائیگیاں")).to_be_visible()
            await shot(page, "04b-caller-verified-urdu")
            await page.get_by_role("link", name="English").click()
            await expect(page.locator("html")).to_have_attribute("dir", "ltr")

            await page.get_by_label("Category").select_option(label="Payment not received")
            await page.get_by_label("Description").fill(
                "Campsite at Govt Girls High School was closed on the collection day."
            )
            await page.get_by_label("Caller's language").select_option(label="Urdu")
            await page.get_by_role("button", name="File grievance").click()
            await expect(page).to_have_url(re.compile(r"/agent/grievances/G-[0-9A-Z]{6}$"))
            ticket = page.url.rsplit("/", 1)[1]
            await expect(page.get_by_text(f"Grievance {ticket} filed.")).to_be_visible()
            await shot(page, "05-grievance-filed")

            await page.get_by_label("Why it needs a supervisor").fill(
                "Caller says the campsite agent asked for Rs 500 to open the gate."
            )
            await page.get_by_role("button", name="Escalate", exact=True).click()
            await expect(page.locator("h1 + p .badge-escalated")).to_have_text("Escalated")
            await expect(
                page.get_by_role("heading", name="Escalate to a supervisor")
            ).to_have_count(0)

            refused = await page.goto(f"{base}/agent/dashboard")
            assert refused is not None and refused.status == 403
            await expect(page.get_by_text("This page is for supervisors.")).to_be_visible()
            await shot(page, "06-agent-refused-dashboard")

            # The agent's own cookies, no CSRF token: refused, and nothing is searched.
            without_token = await agent_context.request.post(
                f"{base}/agent/callers", form={"cnic": "3520212345671"}, max_redirects=0
            )
            assert without_token.status == 403
            assert "This form has expired" in await without_token.text()

            # -- the supervisor ----------------------------------------------------------
            supervisor_context = await browser.new_context(viewport=viewport)
            sup = await sign_in(supervisor_context, "sadia")
            await (
                sup.get_by_role("navigation", name="Console")
                .get_by_role("link", name="Grievances")
                .click()
            )
            await (
                sup.get_by_role("navigation", name="Queue")
                .get_by_role("link", name=re.compile("^Escalated"))
                .click()
            )
            await expect(sup.get_by_role("link", name=ticket)).to_be_visible()
            await shot(sup, "07-escalated-queue")
            await sup.get_by_role("link", name=ticket).click()
            await expect(sup.get_by_text("Caller says the campsite agent")).to_be_visible()
            await sup.get_by_label("Agent", exact=True).select_option(label="amina (Agent)")
            await sup.get_by_role("button", name="Assign", exact=True).click()
            await expect(sup.get_by_text("Assigned to amina.")).to_be_visible()
            await sup.get_by_label("New status").select_option(label="In progress")
            await sup.get_by_label("Note for the caller (optional)").fill(
                "We are checking with the campsite; you will hear from us within 3 days."
            )
            await sup.get_by_role("button", name="Change status").click()
            await expect(sup.get_by_text("Status changed.")).to_be_visible()
            await expect(sup.locator("h1 + p .badge-in_progress")).to_have_text("In progress")
            await shot(sup, "08-grievance-supervisor")

            await sup.goto(f"{base}/agent/dashboard")
            await expect(sup.get_by_role("heading", name="Dashboard")).to_be_visible()
            assert await sup.locator("svg.chart").count() >= 8
            await shot(sup, "09-dashboard")

            # -- the admin -----------------------------------------------------------------
            admin_context = await browser.new_context(viewport=viewport)
            admin = await sign_in(admin_context, "zara")
            await admin.get_by_role("link", name="Audit log").click()
            await admin.get_by_label("Record (CNIC or ticket)").fill("35202-1234567-2")
            await admin.get_by_label("Staff member").fill("amina")
            await admin.get_by_role("button", name="Filter").click()
            views = admin.locator("table.audit tbody tr", has_text="Record viewed")
            await expect(views.first).to_contain_text("person: 35202-*******-2")
            await expect(views.first).to_contain_text("caller verified by code")
            await expect(admin.locator("table.audit")).not_to_contain_text(ELIGIBLE_WIFE)
            await shot(admin, "10-audit-log")
        finally:
            await browser.close()
    assert csp_errors == []
    for name in ("01-login", "04-caller-verified", "09-dashboard", "10-audit-log"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000


#: Cards and scrolled tables whose content is wider than they are (JavaScript, for Playwright).
OVERFLOWING = """() => [...document.querySelectorAll('.card, .table-wrap')]
    .filter((box) => box.scrollWidth > box.clientWidth + 1)
    .map((box) => box.className)"""


async def test_long_unbroken_free_text_stays_inside_its_card(live_server, registry, settings):
    """A description, note or reason of one 1000-character word wraps, in English and Urdu."""
    from playwright.async_api import async_playwright

    ticket = await file(registry, settings, description="ب" * 500 + "x" * 500)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            for username, path, action in (
                ("amina", f"/agent/grievances/{ticket}", "Escalate"),
                ("zara", f"/agent/audit?record={ticket}", None),
            ):
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                page = await context.new_page()
                await page.goto(f"{live_server}/agent/login")
                await page.get_by_label("Username").fill(username)
                await page.get_by_label("Password").fill(PASSWORD)
                await page.get_by_role("button", name="Sign in").click()
                await page.goto(f"{live_server}{path}")
                if action:  # the reason is kept as a note and in the audit log
                    await page.get_by_label("Why it needs a supervisor").fill("y" * 1000)
                    await page.get_by_role("button", name=action, exact=True).click()
                    await page.wait_for_load_state()
                for language in ("English", "اردو"):
                    if await page.get_by_role("link", name=language).count():
                        await page.get_by_role("link", name=language).click()
                    assert await page.evaluate(OVERFLOWING) == [], (path, language)
                await context.close()
        finally:
            await browser.close()


async def test_the_language_switch_keeps_what_was_typed(live_server, registry, settings):
    """An agent halfway through a note switches the console to Urdu and back: every word she
    typed is still in its box, and nothing of it is left behind in the browser afterwards."""
    from playwright.async_api import async_playwright, expect

    ticket = await file(registry, settings)
    internal = "Called the campsite: shut today, the retailer says Rs 500 is his fee."
    reason = "Caller says the agent at Ichhra asked for Rs 500 to open the gate."
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            await page.goto(f"{live_server}/agent/login")
            await page.get_by_label("Username").fill("amina")
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Sign in").click()
            await page.goto(f"{live_server}/agent/grievances/{ticket}")
            await page.get_by_label("Internal note (staff only)").fill(internal)
            await page.get_by_label("Why it needs a supervisor").fill(reason)
            await page.get_by_role("link", name="اردو").click()
            await expect(page.locator("html")).to_have_attribute("dir", "rtl")
            await expect(page.locator("#note")).to_have_value(internal)
            await expect(page.locator("#escalate-note")).to_have_value(reason)
            await expect(page.locator("#caller-note")).to_have_value("")
            assert await page.evaluate("() => sessionStorage.length") == 0
            # Back to English without touching the boxes: the words come along again.
            await page.get_by_role("link", name="English").click()
            await expect(page.locator("html")).to_have_attribute("dir", "ltr")
            await expect(page.locator("#note")).to_have_value(internal)
            await expect(page.locator("#escalate-note")).to_have_value(reason)
            # Sent from the page it came back on, the note is added as typed.
            await page.get_by_role("button", name="Add internal note").click()
            await expect(page.get_by_text("Internal note added.")).to_be_visible()
            await expect(page.locator(".timeline")).to_contain_text(internal)
            # Given back once: a reload shows the boxes as the page has them, empty.
            await page.reload()
            await expect(page.locator("#escalate-note")).to_have_value("")
            assert await page.evaluate("() => sessionStorage.length") == 0
            # A CNIC half typed on the first page comes along too.
            await page.goto(f"{live_server}/agent")
            await page.get_by_label("CNIC").fill("35202-12345")
            await page.get_by_role("link", name="اردو").click()
            await expect(page.locator("html")).to_have_attribute("dir", "rtl")
            await expect(page.locator("#cnic")).to_have_value("35202-12345")
            await context.close()
            # Without JavaScript the switch is still a plain link that switches.
            context = await browser.new_context(java_script_enabled=False)
            page = await context.new_page()
            await page.goto(f"{live_server}/agent/login")
            await page.get_by_role("link", name="اردو").click()
            await expect(page.locator("html")).to_have_attribute("dir", "rtl")
            await context.close()
        finally:
            await browser.close()
