"""A worker's id is written in logs and in `claimed_by`: the log filter must leave it whole, so an
operator can tell which worker claimed a message."""

from __future__ import annotations

import pytest

from api.logs import mask_sensitive
from api.outbox import worker


@pytest.mark.parametrize("pid", [42, 123456, 999999, 4194304])
def test_the_log_filter_leaves_a_worker_id_whole(monkeypatch: pytest.MonkeyPatch, pid: int) -> None:
    # The filter masks any lone group of six digits as a code: a six-digit process id, or a
    # random part that happened to be six digits, was logged as `******`.
    monkeypatch.setattr(worker.os, "getpid", lambda: pid)
    monkeypatch.setattr(worker.socket, "gethostname", lambda: "api-7")
    ids = {worker.default_worker_id() for _ in range(200)}
    assert len(ids) == 200
    for worker_id in ids:
        assert worker_id.startswith("api-7-") and str(pid) in worker_id
        assert mask_sensitive(worker_id) == worker_id
        assert mask_sensitive(f"embedded-{worker_id}") == f"embedded-{worker_id}"
