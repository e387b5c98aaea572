from __future__ import annotations

from pathlib import Path

from contracts import new_event_id
from edge_agent.outbox import Outbox


def test_outbox_keeps_order_is_idempotent_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path)
    ids = [new_event_id() for _ in range(5)]
    for i, event_id in enumerate(ids):
        assert box.put(event_id, "t", f"payload-{i}".encode())
    assert not box.put(ids[0], "t", b"again")  # redelivery from a retry: accepted once
    box.mark_sent(ids[1])
    box.mark_failed(ids[0], "broker down")
    box.close()

    reopened = Outbox(path)  # a restart (or a crash after put returned)
    pending = reopened.pending()
    assert [m.event_id for m in pending] == [ids[0], *ids[2:]]
    assert pending[0].attempts == 1 and pending[0].payload == b"payload-0"
    assert reopened.count_pending() == 4
    assert reopened.purge_sent(older_than_s=-1) == 1


class _Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counts_stats_and_pending_ids(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite")
    ids = [new_event_id() for _ in range(3)]
    for event_id in ids:
        box.put(event_id, "t", b"x" * 100)
    box.mark_sent(ids[0])
    assert box.count_sent() == 1
    assert box.pending_event_ids() == {ids[1], ids[2]}
    stats = box.stats()
    assert (stats.pending, stats.sent) == (2, 1)
    wal = Path(f"{box.path}-wal").stat().st_size
    assert stats.file_bytes >= box.path.stat().st_size + wal and wal > 0


def test_purge_keeps_recent_sent_rows_and_pending_ones(tmp_path: Path) -> None:
    clock = _Clock()
    box = Outbox(tmp_path / "outbox.sqlite", clock=clock)
    old, recent, waiting = new_event_id(), new_event_id(), new_event_id()
    for event_id in (old, recent, waiting):
        box.put(event_id, "t", b"m")
    box.mark_sent(old)
    clock.now += 3600
    box.mark_sent(recent)
    clock.now += 1800
    assert box.purge_sent(older_than_s=2 * 3600) == 0
    assert box.purge_sent(older_than_s=3000) == 1  # `old` was sent 5400 s ago, `recent` 1800 s ago
    assert box.count_sent() == 1 and box.pending_event_ids() == {waiting}


def test_purge_gives_the_space_back(tmp_path: Path) -> None:
    """A burst (an outage's backlog) must not leave a large file behind once it is sent and purged."""
    box = Outbox(tmp_path / "outbox.sqlite", checkpoint_interval_s=0)
    ids = [new_event_id() for _ in range(200)]
    for event_id in ids:
        box.put(event_id, "t", bytes(20_000))
    burst = box.stats().file_bytes
    for event_id in ids:
        box.mark_sent(event_id)
    assert box.purge_sent(older_than_s=-1) == 200
    after = box.stats()
    assert Path(f"{box.path}-wal").stat().st_size == 0  # WAL checkpointed and truncated
    assert (after.pending, after.sent) == (0, 0)
    assert after.file_bytes < burst // 20
    box.put(new_event_id(), "t", b"still works")
    assert box.count_pending() == 1
