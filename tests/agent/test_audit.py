"""The audit log: admins browse it (CNICs masked), filter it and export it as CSV."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io

from tests.agent.conftest import audit_entries
from tests.agent.test_callers import WIFE_FORMATTED, WIFE_MASKED, open_lookup, verified
from tests.conftest import ELIGIBLE_WIFE, NOT_ELIGIBLE


async def test_admins_see_who_looked_at_what_masked(new_client, staff, registry):
    amina = await new_client("amina")
    await amina.get(await verified(amina, registry))
    await open_lookup(amina, "42101-9876543-3")
    zara = await new_client("zara")
    page = (await zara.get("/agent/audit")).text
    for action in ("Record viewed", "CNIC search", "Caller verified", "Code sent", "Signed in"):
        assert f"<td>{action}</td>" in page, action
    assert f"person: {WIFE_MASKED}" in page
    assert ELIGIBLE_WIFE not in page and NOT_ELIGIBLE not in page
    assert "caller verified by code" in page
    # Typing a full CNIC finds that person's entries only (masks are shared by millions).
    one = (await zara.get("/agent/audit", params={"record": WIFE_FORMATTED})).text
    assert "42101-*******-3" not in one and WIFE_MASKED in one
    assert "4 entries." in one  # lookup, send_code, verify, view
    views = (await zara.get("/agent/audit", params={"action": "view", "actor": "amina"})).text
    assert "1 entries." in views
    nobody = (await zara.get("/agent/audit", params={"actor": "bilal"})).text
    assert "0 entries." in nobody


async def test_the_export_is_csv_masked_and_itself_audited(new_client, staff, registry):
    amina = await new_client("amina")
    lookup = await open_lookup(amina)
    await amina.post(
        f"{lookup}/override-request",
        data={
            "reason": '=HYPERLINK("http://evil") caller lost her phone',
            "csrf_token": (await amina.get(lookup)).text.split('name="csrf_token" value="')[1][:43],
        },
    )
    zara = await new_client("zara")
    response = await zara.get("/agent/audit.csv", params={"record": WIFE_FORMATTED})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    # Excel reads a CSV as UTF-8 (Urdu intact) only when it starts with the byte order mark.
    assert response.content.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["at", "actor", "action", "record_type", "record_id", "reason", "client_ip"]
    # Times as the page shows them, Pakistan time, with the offset that makes them unambiguous.
    assert all(
        dt.datetime.fromisoformat(r[0]).utcoffset() == dt.timedelta(hours=5) for r in rows[1:]
    )
    assert {r[4] for r in rows[1:]} == {WIFE_MASKED}
    assert ELIGIBLE_WIFE not in response.text
    request = next(r for r in rows if r[2] == "override_request")
    assert request[5].startswith("'=HYPERLINK")  # a spreadsheet shows it, never runs it
    [export] = await audit_entries(registry, action="export", record_type="audit_log")
    # What it was filtered by, with the CNIC masked as the page and the export show it.
    assert export.actor == "zara" and export.reason == f"record_type=person record_id={WIFE_MASKED}"
    page = (await zara.get("/agent/audit", params={"action": "export"})).text
    assert ELIGIBLE_WIFE not in page and f"record_id={WIFE_MASKED}" in page


async def test_the_count_stops_at_the_cap(new_client, staff, registry, monkeypatch):
    """The unfiltered log is counted up to COUNT_CAP entries, shown as "N+" past it."""
    from api.agent import pages
    from api.agent.routes import audit_log

    monkeypatch.setattr(pages, "COUNT_CAP", 2)
    monkeypatch.setattr(audit_log, "COUNT_CAP", 2)
    amina = await new_client("amina")
    await open_lookup(amina, "42101-9876543-3")
    zara = await new_client("zara")
    page = (await zara.get("/agent/audit")).text
    assert "2+ entries." in page
    assert "1 entries." in (await zara.get("/agent/audit", params={"actor": "zara"})).text


def test_a_cell_with_a_formula_after_a_semicolon_stays_one_cell():
    """A spreadsheet set to `;` as its list separator (as many are) splits an unquoted cell at
    the `;`, and a reason typed `x;=HYPERLINK(…)` became a formula cell of its own: every cell is
    quoted, so whichever separator the spreadsheet reads, the formula stays inside its cell."""
    from api.agent.audit import csv_line

    formula = "caller lost her phone;=cmd|' /C calc'!A0"
    line = csv_line([formula, "amina"])
    for delimiter in (",", ";"):
        cells = next(csv.reader(io.StringIO(line), delimiter=delimiter))
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells), cells
    assert next(csv.reader(io.StringIO(line))) == [formula, "amina"]


async def test_browsing_the_log_for_a_person_is_itself_audited(new_client, staff, registry):
    """Whom a person's record was shown to is about her too: an admin reading the log for a CNIC
    is recorded as the export of it is, the CNIC masked; browsing it unfiltered or by member of
    staff is not (the log would fill with its own reading)."""
    amina = await new_client("amina")
    await open_lookup(amina)
    zara = await new_client("zara")
    assert (await zara.get("/agent/audit")).status_code == 200
    assert (await zara.get("/agent/audit", params={"actor": "amina"})).status_code == 200
    assert await audit_entries(registry, record_type="audit_log") == []
    one = await zara.get("/agent/audit", params={"record": WIFE_FORMATTED})
    assert one.status_code == 200
    [seen] = await audit_entries(registry, record_type="audit_log")
    assert (seen.actor, seen.action) == ("zara", "view")
    assert seen.reason == f"record_type=person record_id={WIFE_MASKED}"
    page = (await zara.get("/agent/audit", params={"action": "view"})).text
    assert ELIGIBLE_WIFE not in page and f"record_id={WIFE_MASKED}" in page
