"""A gateway's publisher as its own process, so a test can SIGKILL it: drains the outbox file forever.

usage: python -m tests.integration.iot.publisher_proc SETTINGS_JSON OUTBOX_PATH
"""

from __future__ import annotations

import signal
import sys
import threading

from edge_agent.outbox import Outbox
from edge_agent.publisher import OutboxPublisher
from edge_agent.transport import TransportError, TransportSettings, make_transport


def main() -> int:
    settings = TransportSettings.model_validate_json(sys.argv[1])
    outbox = Outbox(sys.argv[2])
    transport = make_transport(settings)
    try:
        transport.connect(timeout=2)
    except TransportError:
        pass  # the broker may be down right now; the transport keeps trying in the background
    publisher = OutboxPublisher(outbox, transport, settings.thing_name, heartbeat_interval_s=2,
                                backoff_min_s=0.2, backoff_max_s=1.0).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print("publisher running", flush=True)
    done.wait()
    publisher.stop()
    transport.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
