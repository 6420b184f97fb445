"""The language switch keeps what was typed for the page it was typed on, in a real browser
(Playwright driving Debian's Chromium, as tests/agent/test_browser.py): a sign-in page shown on
the way (the session had ended) does not take the words, and they are given back to the same
member of staff only."""

from __future__ import annotations

from api.agent.sessions import _key as session_key
from tests.agent.conftest import PASSWORD
from tests.agent.test_browser import CHROMIUM, CHROMIUM_ARGS, live_server, pytestmark
from tests.agent.test_grievances import file

__all__ = ["live_server", "pytestmark"]

NOTE = "Called the campsite: shut today, the retailer says Rs 500 is his fee."


async def test_the_switch_keeps_the_words_through_a_sign_in(live_server, redis, registry, settings):
    from playwright.async_api import async_playwright, expect

    ticket = await file(registry, settings)
    page_url = f"{live_server}/agent/grievances/{ticket}"

    async def typed_then_signed_out(browser):
        """Amina types an internal note, her session ends (an hour without a request), and she
        switches the console to Urdu: the sign-in page in Urdu is shown."""
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await page.goto(f"{live_server}/agent/login")
        await page.locator("#username").fill("amina")
        await page.locator("#password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.goto(page_url)
        await page.get_by_label("Internal note (staff only)").fill(NOTE)
        [cookie] = [c for c in await context.cookies() if c["name"] == "rabta_agent"]
        await redis.delete(session_key(cookie["value"]))
        await page.get_by_role("link", name="اردو").click()
        await expect(page.locator("html")).to_have_attribute("dir", "rtl")
        await expect(page.locator("#password")).to_be_visible()
        assert await page.evaluate("() => sessionStorage.length") == 1
        return context, page

    async def sign_in(page, username: str) -> None:
        await page.locator("#username").fill(username)
        await page.locator("#password").fill(PASSWORD)
        await page.locator("form[action='/agent/login'] button").click()
        await expect(page).to_have_url(page_url)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            # She signs in again: the grievance's page, in Urdu, holds her note.
            context, page = await typed_then_signed_out(browser)
            await sign_in(page, "amina")
            await expect(page.locator("html")).to_have_attribute("dir", "rtl")
            await expect(page.locator("#note")).to_have_value(NOTE)
            assert await page.evaluate("() => sessionStorage.length") == 0
            await context.close()
            # Bilal signs in at that tab instead: her words are not his, and are gone.
            context, page = await typed_then_signed_out(browser)
            await sign_in(page, "bilal")
            await expect(page.locator("#note")).to_have_value("")
            assert await page.evaluate("() => sessionStorage.length") == 0
            await context.close()
        finally:
            await browser.close()
