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
