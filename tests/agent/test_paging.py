"""The queue's and the audit log's pages link to the next and the previous by where they end and
start (a cursor), not by number: paging on and back shows every row once however rows are
closed or added meanwhile, whatever the tab or filter, and a cursor that is no place is the
first page."""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import replace
from html import unescape

import pytest
from sqlalchemy import select, update

from api.agent.pages import Cursor
from api.agent.routes import audit_log as audit_routes
from api.agent.routes import grievances as queue_routes
from api.grievances import repository
from api.grievances.schemas import Category
from api.registry.models import AuditEntry, Grievance
from tests.agent.test_grievances import file
from tests.conftest import ELIGIBLE_WIFE, NOT_ELIGIBLE

_TICKET = re.compile(r'<a href="/agent/grievances/([^"/?]+)">')
#: Each audit entry's reason (the tests give theirs one each; signing in gives none).
_REASON = re.compile(r'<td dir="auto">([^<]*)</td>')
_LINK = re.compile(r'<a href="([^"]+)" rel="(prev|next)">')


def links(html: str) -> dict[str, str]:
    """The pager's links of a page: {"prev": url, "next": url}, those there are."""
    return {rel: unescape(href) for href, rel in _LINK.findall(html)}


async def walk(client, url: str, pattern: re.Pattern[str], *, rel: str = "next", between=None):
    """The pages from `url` on, following `rel` links to the end: each page's rows, and the
    last page's url. `between(n)` runs after the n-th page is read (to change rows meanwhile)."""
    pages: list[list[str]] = []
    while True:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        pages.append(pattern.findall(response.text))
        if between is not None:
            await between(len(pages))
        following = links(response.text).get(rel)
        if following is None:
            return pages, url
        assert len(pages) < 50, "the pages link on without end"
        url = following


async def set_status(db, tickets: list[str], status: str) -> None:
    async with db.transaction() as session:
        await session.execute(
            update(Grievance).where(Grievance.ticket_id.in_(tickets)).values(status=status)
        )


async def in_order(db, where: repository.QueueFilter) -> list[str]:
    """The tickets `where` lets through, in the queue's order, read whole (no paging)."""
    async with db.sessions() as session:
        query = where.apply(select(Grievance))
        rows = await session.scalars(query.order_by(Grievance.due_at, Grievance.id))
    return [g.ticket_id for g in rows]


WORKED = repository.QueueFilter(statuses=queue_routes.WORKED)


async def test_paging_on_and_back_shows_each_grievance_once_while_others_close(
    new_client, staff, registry, settings, monkeypatch
):
    monkeypatch.setattr(queue_routes, "PAGE_SIZE", 3)
    tickets = [await file(registry, settings, days_ago=9 - n) for n in range(9)]
    # Four due at the same moment, across the first pages' boundary: the id orders them.
    async with registry.transaction() as session:
        due = await session.scalar(
            select(Grievance.due_at).where(Grievance.ticket_id == tickets[1])
        )
        await session.execute(
            update(Grievance).where(Grievance.ticket_id.in_(tickets[1:5])).values(due_at=due)
        )
    order = await in_order(registry, WORKED)
    assert sorted(order) == sorted(tickets)
    amina = await new_client("amina")
    late_arrival: list[str] = []

    async def meanwhile(page: int) -> None:
        if page == 1:
            # A colleague closes a grievance this page showed (an OFFSET would now skip the
            # next page's first row) and one not yet reached (it is not shown at all).
            await set_status(registry, [order[0], order[-1]], "resolved")
        if page == 2:
            # A grievance filed long ago (due before everything shown) arrives: it belongs
            # before the pages already seen (an OFFSET would show one row twice).
            late_arrival.append(await file(registry, settings, cnic=NOT_ELIGIBLE, days_ago=30))

    pages, last = await walk(amina, "/agent/grievances", _TICKET, between=meanwhile)
    seen = [t for p in pages for t in p]
    assert seen == order[:-1]
    assert [len(p) for p in pages] == [3, 3, 2]
    # Back from the last page, while another is closed: every grievance still open before the
    # last page, each once, ending on a page with no Previous.
    await set_status(registry, [order[4]], "rejected")
    now_open = await in_order(registry, WORKED)
    assert now_open[0] == late_arrival[0]
    back, first = await walk(amina, last, _TICKET, rel="prev")
    shown_back = [t for p in reversed(back) for t in p]
    assert shown_back == now_open
    assert len(shown_back) == len(set(shown_back))
    assert "prev" not in links((await amina.get(first)).text)
    # That first page's Next goes on from where it ends.
    forward_again, _ = await walk(amina, first, _TICKET)
    assert [t for p in forward_again for t in p] == now_open


@pytest.mark.parametrize("view", ["open", "escalated", "breached", "mine", "unassigned", "closed"])
async def test_every_tab_and_filter_pages_through_its_own_grievances(
    view, new_client, staff, registry, settings, monkeypatch
):
    monkeypatch.setattr(queue_routes, "PAGE_SIZE", 2)
    statuses = ["open", "in_progress", "escalated", "resolved", "rejected"]
    categories = [Category.PAYMENT_NOT_RECEIVED, Category.OTHER]
    for n in range(14):
        ticket = await file(
            registry,
            settings,
            cnic=ELIGIBLE_WIFE if n % 2 else NOT_ELIGIBLE,
            days_ago=(n * 7) % 24,  # some past their SLA, some not
            district="Lahore" if n % 3 else "Karachi Central",
            category=categories[n % 2],
        )
        async with registry.transaction() as session:
            await session.execute(
                update(Grievance)
                .where(Grievance.ticket_id == ticket)
                .values(
                    status=statuses[n % 5],
                    assigned_to=staff["amina"] if n % 4 < 2 else None,
                )
            )
    amina = await new_client("amina")
    now = dt.datetime.now(dt.UTC)
    narrowed = [
        ({}, {}),
        ({"district": "lahore"}, {"district": "lahore"}),
        ({"category": "other"}, {"category": "other"}),
        ({"district": "Lahore", "category": "payment_not_received"},) * 2,
    ]
    tab = queue_routes._filter(view, staff_id=staff["amina"], now=now)
    assert len(await in_order(registry, tab)) > 2, "the tab fits on one page"
    for query, narrow in narrowed:
        expected = await in_order(registry, replace(tab, **narrow))
        params = "&".join(f"{k}={v}" for k, v in {"view": view, **query}.items())
        was: dict[str, str] = {}

        async def meanwhile(page: int) -> None:
            # The first grievance shown leaves the tab (closed, or reopened from Closed) once
            # its page is read: an OFFSET would skip the row the next page starts with.
            if page == 1 and expected:
                async with registry.sessions() as session:
                    was[expected[0]] = await session.scalar(
                        select(Grievance.status).where(Grievance.ticket_id == expected[0])
                    )
                await set_status(registry, expected[:1], "open" if view == "closed" else "resolved")

        pages, last = await walk(amina, f"/agent/grievances?{params}", _TICKET, between=meanwhile)
        assert [t for p in pages for t in p] == expected, (view, query)
        assert all(len(p) == 2 for p in pages[:-1])
        for ticket, status in was.items():
            await set_status(registry, [ticket], status)
        back, _ = await walk(amina, last, _TICKET, rel="prev")
        assert [t for p in reversed(back) for t in p] == expected, (view, query)
        # The pager keeps the tab and the filters.
        for url in (last, *links((await amina.get(last)).text).values()):
            assert f"view={view}" in url and all(f"{k}={v}" in url for k, v in query.items())


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


GARBLED = [
    "",
    "garbage",
    "!!!!",
    "%00",
    "ۃۃۃ",
    "x" * 100,
    _token("abc.def"),
    _token("1.2.3"),
    _token("99999999999999999999.1"),  # more digits than any moment has
    _token("999999999999999999.1"),  # a moment past the year 9999
    _token("-999999999999999999.1"),
    _token("1700000000000000.99999999999999999999"),  # an id past PostgreSQL's bigint
    _token("1700000000000000.-5"),
    _token("1700000000000000.5") + "=====",
    _token("1700000000000000.5") + "%2F",
]


async def test_a_garbled_cursor_is_the_first_page(
    new_client, staff, registry, settings, monkeypatch
):
    monkeypatch.setattr(queue_routes, "PAGE_SIZE", 2)
    monkeypatch.setattr(audit_routes, "PAGE_SIZE", 2)
    for n in range(5):
        await file(registry, settings, days_ago=n)
    async with registry.transaction() as session:
        for n in range(5):
            session.add(
                AuditEntry(
                    actor="sadia",
                    action="view",
                    record_type="grievance",
                    record_id="x",
                    reason=f"entry {n}",
                )
            )
    amina = await new_client("amina")
    zara = await new_client("zara")
    for url, pattern in (("/agent/grievances?view=open", _TICKET), ("/agent/audit?", _REASON)):
        client = amina if "grievances" in url else zara
        first = (await client.get(url)).text
        assert len(pattern.findall(first)) == 2 and "prev" not in links(first)
        for cursor in GARBLED:
            for name in ("after", "before"):
                response = await client.get(f"{url}&{name}={cursor}")
                assert response.status_code == 200, (url, name, cursor)
                assert pattern.findall(response.text) == pattern.findall(first), (name, cursor)
                assert links(response.text) == links(first)
    # A well-formed cursor past either end of a list: an empty page linking back to the list.
    end = Cursor(dt.datetime(9999, 1, 1, tzinfo=dt.UTC), 1).token()
    start = Cursor(dt.datetime(1971, 1, 1, tzinfo=dt.UTC), 1).token()
    for client, url, pattern, past_its_end, before_its_start in (
        (amina, "/agent/grievances?view=open", _TICKET, f"after={end}", f"before={start}"),
        (zara, "/agent/audit?", _REASON, f"after={start}", f"before={end}"),  # newest first
    ):
        past = (await client.get(f"{url}&{past_its_end}")).text
        assert pattern.findall(past) == [] and list(links(past)) == ["prev"]
        past = (await client.get(f"{url}&{before_its_start}")).text
        assert pattern.findall(past) == [] and list(links(past)) == ["next"]


async def test_the_audit_log_pages_newest_first_each_entry_once(
    new_client, staff, registry, monkeypatch
):
    monkeypatch.setattr(audit_routes, "PAGE_SIZE", 3)
    zara = await new_client("zara")  # signing in is audited too: not by sadia
    moment = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
    async with registry.transaction() as session:
        for n in range(11):
            # Five entries at one moment, across page boundaries: the id orders them.
            at = moment if 3 <= n < 8 else moment + dt.timedelta(minutes=n)
            session.add(
                AuditEntry(
                    at=at,
                    actor="sadia" if n % 3 else "bilal",
                    action="view",
                    record_type="grievance",
                    record_id="x",
                    reason=f"entry {n}",
                )
            )

    async def listed(**where: str) -> list[str]:
        async with registry.sessions() as session:
            query = select(AuditEntry.reason)
            for name, value in where.items():
                query = query.where(getattr(AuditEntry, name) == value)
            order = (AuditEntry.at.desc(), AuditEntry.id.desc())
            return [r or "" for r in await session.scalars(query.order_by(*order))]

    order = await listed()
    assert order.count("") == 1  # zara's signing in; the others each have their own reason

    async def meanwhile(page: int) -> None:
        if page == 1:  # new entries come in at the top while the admin reads on
            async with registry.transaction() as session:
                session.add(
                    AuditEntry(
                        actor="sadia",
                        action="view",
                        record_type="grievance",
                        record_id="x",
                        reason="entry 99",
                    )
                )

    pages, last = await walk(zara, "/agent/audit", _REASON, between=meanwhile)
    assert [e for p in pages for e in p] == order
    assert all(len(p) == 3 for p in pages[:-1]) and len(pages) == 4
    back, _ = await walk(zara, last, _REASON, rel="prev")
    assert [e for p in reversed(back) for e in p] == await listed()
    assert back[-1][0] == "entry 99"
    # Narrowed to one member of staff, with the filter kept in the pager's links.
    pages, last = await walk(zara, "/agent/audit?actor=sadia", _REASON)
    assert [e for p in pages for e in p] == await listed(actor="sadia")
    assert "actor=sadia" in last
