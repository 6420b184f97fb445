"""A pytest plugin: every log record of the whole test session goes to one file, which is scanned
at the end for personal data (SPEC §3: logs never show a CNIC, a phone number or an OTP).

Installed for the whole suite from tests/conftest.py: `pytest_plugins = ["tests.security.logscan"]`.

* Every record, whichever logger makes it and whatever handlers are configured at the time, is
  written with a *plain* formatter (message, and traceback when there is one) to
  `<basetemp>/rabta-session.log` (or `$RABTA_LOGSCAN_FILE`). Masking is
  the record factory's job (api/logs.py, installed by every entry point): a handler that does
  not mask is what a deployment with its own logging configuration would have, so that is what
  is scanned. The root level is INFO, as in production, and DEBUG for Rabta's own loggers.
* `OtpService.issue` is wrapped to remember every code issued during the run; each is searched
  for literally.
* At the end of the session the file is scanned with api/logs.py's own patterns (CNIC, phone,
  bot token) plus raw E.164 mobiles (`+923…`), bare 13-digit CNICs and the issued codes. Any hit
  fails the run (exit status 1) and is reported with its line, masked.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from api import logs as product_logs

#: Patterns that must never match a log line, by name.
PATTERNS: dict[str, re.Pattern[str]] = {
    "cnic (api/logs.py)": product_logs._CNIC,
    "phone (api/logs.py)": product_logs._PHONE,
    "bot token (api/logs.py)": product_logs._BOT_TOKEN,
    "raw E.164 mobile": re.compile(r"\+923[0-9]{9}(?![0-9])"),
    "13-digit CNIC": re.compile(r"(?<![0-9])[0-9]{13}(?![0-9])"),
}


@dataclass
class SessionLog:
    """What the plugin keeps for the session."""

    path: Path
    codes: set[str] = field(default_factory=set)
    records: int = 0
    findings: list[str] = field(default_factory=list)
    scanned: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class _FileHandler(logging.Handler):
    def __init__(self, state: SessionLog) -> None:
        super().__init__(level=logging.DEBUG)
        self.state = state
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self._file = state.path.open("a", encoding="utf-8")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record that cannot be formatted is still worth a line
            line = f"{record.levelname} {record.name}: {record.msg!r}"
        with self.state.lock:
            if self._file.closed:  # a record logged while the interpreter shuts down
                return
            self._file.write(line.replace("\n", "\n    ") + "\n")
            self.state.records += 1

    def close(self) -> None:
        # `logging.config.dictConfig` (uvicorn.Config does it) and `logging.shutdown` close
        # every handler in the process: keep writing, the session is not over.
        with self.state.lock:
            if not self._file.closed:
                self._file.flush()
        super().close()

    def finish(self) -> None:
        """The end of the session: close the file for good."""
        with self.state.lock:
            if not self._file.closed:
                self._file.close()


_STATE: SessionLog | None = None
_HANDLER: _FileHandler | None = None
_ORIGINAL_ISSUE: Any = None


def current() -> SessionLog | None:
    """The session's log state (tests/security reads the issued codes)."""
    return _STATE


def _record_codes(state: SessionLog) -> None:
    global _ORIGINAL_ISSUE
    from api.otp.service import OtpService

    _ORIGINAL_ISSUE = OtpService.issue

    async def issue(self: OtpService, *args: Any, **kwargs: Any) -> Any:
        issued = await _ORIGINAL_ISSUE(self, *args, **kwargs)
        if issued.code:
            state.codes.add(str(issued.code))
        return issued

    OtpService.issue = issue  # type: ignore[method-assign]


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    global _STATE, _HANDLER
    if hasattr(config, "workerinput"):  # pragma: no cover - one file per xdist worker
        name = f"rabta-session-{config.workerinput['workerid']}.log"
    else:
        name = "rabta-session.log"
    target = os.environ.get("RABTA_LOGSCAN_FILE")
    path = Path(target) if target else config._tmp_path_factory.getbasetemp() / name  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    _STATE = SessionLog(path=path)
    # What every entry point does first (create_app, configure_logging): mask as records are made.
    product_logs.install_masking()
    _HANDLER = _FileHandler(_STATE)
    _see_every_record(_HANDLER)
    _set_levels()
    _record_codes(_STATE)


def _see_every_record(handler: logging.Handler) -> None:
    """Hand every record to `handler` as its logger handles it: a root handler alone would miss
    what is logged after a test (or `configure_logging`, in the CLI tests) replaces the root's
    handlers, or on loggers that do not propagate."""
    original = logging.Logger.handle

    def handle(self: logging.Logger, record: logging.LogRecord) -> None:
        if not getattr(record, "_rabta_logscan", False):
            record._rabta_logscan = True
            handler.handle(record)
        original(self, record)

    logging.Logger.handle = handle  # type: ignore[method-assign]


def _set_levels() -> None:
    """INFO everywhere, as in production, and DEBUG for Rabta's own loggers."""
    root = logging.getLogger()
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    for name in ("api", "bot"):
        logging.getLogger(name).setLevel(logging.DEBUG)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _set_levels()  # a test before may have raised them (configure_logging, caplog)


def scan(state: SessionLog) -> list[str]:
    """Every line of the session log that shows personal data or an issued code."""
    findings = []
    codes = sorted(state.codes)
    code_pattern = (
        re.compile(r"(?<![0-9])(" + "|".join(map(re.escape, codes)) + r")(?![0-9])")
        if codes
        else None
    )
    with state.path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            for name, pattern in PATTERNS.items():
                if pattern.search(line):
                    findings.append(f"line {number}: {name}: {product_logs.mask_sensitive(line)}")
            if code_pattern is not None and code_pattern.search(line):
                masked = code_pattern.sub("<code>", line)
                findings.append(f"line {number}: an issued OTP code: {masked.strip()}")
    return findings


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state, handler = _STATE, _HANDLER
    if state is None or handler is None:
        return
    handler.finish()
    state.findings = scan(state)
    state.scanned = True
    if state.findings and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.security.figures import FIGURES

    if FIGURES:
        terminalreporter.section("fault and attack figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
    state = _STATE
    if state is None or not state.scanned:
        return
    terminalreporter.section("log scan (tests/security/logscan.py)")
    terminalreporter.write_line(
        f"{state.records} log records in {state.path}; {len(state.codes)} OTP codes issued "
        f"and searched for; {len(state.findings)} lines with personal data or a code"
    )
    for finding in state.findings[:50]:
        terminalreporter.write_line(f"  {finding.rstrip()}", red=True)
    if state.findings:
        terminalreporter.write_line("LOG SCAN FAILED: the run fails.", red=True, bold=True)
