"""The delivery loop: `rabta worker` in its own process, or embedded in the API process."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import signal
import socket
import string
import threading

from api.db import Database
from api.outbox.senders import Senders, build_senders, close_senders
from api.outbox.service import DeliveryReport, deliver_due
from api.problems import is_database_unavailable
from api.settings import Settings

log = logging.getLogger(__name__)

#: Longest pause after repeated failures to reach the database.
MAX_ERROR_BACKOFF_SECONDS = 30.0


def default_worker_id() -> str:
    """host-pid-random: unique per worker, readable in `claimed_by` and in logs. The log filter
    masks any lone six digits as a code, so the pid is written in seven (pids stop at 4194304)
    and the random part in letters."""
    random = "".join(secrets.choice(string.ascii_lowercase) for _ in range(6))
    return f"{socket.gethostname()[:40]}-{os.getpid():07d}-{random}"


async def nap(wake: asyncio.Event, seconds: float) -> None:
    """Sleep, waking at once when `wake` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout=seconds)


def _install_signals(stop: asyncio.Event) -> list[signal.Signals]:
    if threading.current_thread() is not threading.main_thread():
        return []
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, _on_signal, stop, sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not on this platform
            continue
        installed.append(sig)
    return installed


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    if not stop.is_set():
        log.info("outbox worker: %s received, finishing the messages in flight", sig.name)
    stop.set()


async def run_worker(
    settings: Settings,
    *,
    worker_id: str | None = None,
    stop: asyncio.Event | None = None,
    poll_interval: float = 1.0,
    batch: int = 50,
    once: bool = False,
    concurrency: int = 8,
    db: Database | None = None,
    senders: Senders | None = None,
) -> DeliveryReport:
    """Deliver the outbox until `stop` is set (or SIGTERM/SIGINT, when no `stop` is given).

    With `once`, deliver what is due now and return. A database or sender outage never ends the
    loop: it backs off and tries again. Returns what was done in total.
    """
    worker_id = worker_id or default_worker_id()
    own_stop = stop is None
    stop = stop or asyncio.Event()
    signals = _install_signals(stop) if own_stop else []
    own_db = db is None
    database = db or Database.from_settings(settings)
    own_senders = senders is None
    channels = senders if senders is not None else build_senders(settings)
    total = DeliveryReport()
    errors = 0
    # Which way messages leave, said at start: `console` writes them to a file and sends nothing.
    log.info(
        "outbox worker %s delivering %s through %s (batch %d)",
        worker_id,
        ", ".join(sorted(channels)) or "nothing",
        settings.outbound_mode if own_senders else "the senders given",
        batch,
    )
    try:
        while not stop.is_set():
            try:
                report = await deliver_due(
                    database,
                    channels,
                    worker_id=worker_id,
                    limit=batch,
                    concurrency=concurrency,
                    stop=stop,
                    code_ttl=dt.timedelta(seconds=settings.otp_ttl_seconds),
                )
            except Exception as exc:
                errors += 1
                delay = min(MAX_ERROR_BACKOFF_SECONDS, poll_interval * 2**errors)
                if is_database_unavailable(exc):
                    # Expected while PostgreSQL restarts or fails over: one line, no traceback.
                    log.warning(
                        "outbox worker %s: delivery pass failed: the database is unavailable "
                        "(%s); again in %.0f s",
                        worker_id,
                        type(exc).__name__,
                        delay,
                    )
                else:
                    log.exception(
                        "outbox worker %s: delivery pass failed; again in %.0f s", worker_id, delay
                    )
                if once:
                    break
                await nap(stop, delay)
                continue
            if errors:
                log.info(
                    "outbox worker %s: delivering again after %d failed passes", worker_id, errors
                )
            errors = 0
            total += report
            if report.claimed:
                log.info(
                    "outbox: %d sent, %d retried, %d failed, %d suppressed, %d released",
                    report.sent,
                    report.retried,
                    report.failed,
                    report.suppressed,
                    report.released,
                )
            if report.claimed < batch:
                # Nothing more is due right now.
                if once:
                    break
                await nap(stop, poll_interval)
    finally:
        loop = asyncio.get_running_loop()
        for sig in signals:
            loop.remove_signal_handler(sig)
        if own_senders:
            await close_senders(channels)
        if own_db:
            await database.dispose()
    log.info("outbox worker %s stopped", worker_id)
    return total


class EmbeddedWorker:
    """The same delivery loop as a background task of the API process (development)."""

    def __init__(
        self,
        settings: Settings,
        *,
        db: Database | None = None,
        worker_id: str | None = None,
        poll_interval: float = 1.0,
        batch: int = 50,
    ) -> None:
        self.settings = settings
        self.db = db
        self.worker_id = worker_id or f"embedded-{default_worker_id()}"
        self.poll_interval = poll_interval
        self.batch = batch
        self._stop = asyncio.Event()
        self._task: asyncio.Task[DeliveryReport] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start delivering in the background (inside a running event loop)."""
        if self.running:
            return
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            run_worker(
                self.settings,
                worker_id=self.worker_id,
                stop=self._stop,
                poll_interval=self.poll_interval,
                batch=self.batch,
                db=self.db,
            ),
            name="rabta-outbox-worker",
        )
        self._task.add_done_callback(_report_crash)

    async def stop(self, grace: float = 30.0) -> None:
        """Finish the messages in flight, hand the rest of the batch back, and stop."""
        if self._task is None:
            return
        self._stop.set()
        try:
            await asyncio.wait_for(self._task, timeout=grace)
        except TimeoutError:
            log.warning("embedded outbox worker did not stop in %.0f s; cancelled", grace)
        except Exception:
            log.exception("embedded outbox worker ended with an error")
        finally:
            self._task = None


def _report_crash(task: asyncio.Task[DeliveryReport]) -> None:
    # A misconfiguration (say RABTA_OUTBOUND=twilio without TWILIO_FROM) ends the loop at once:
    # say so now, not when the API shuts down.
    if not task.cancelled() and task.exception() is not None:
        log.error("the embedded outbox worker stopped", exc_info=task.exception())
