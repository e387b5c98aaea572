"""The metric names and units Vigia emits (namespace "Vigia"). The dashboard and alarms in
cloud/infra/template.yaml reference these names; a unit test cross-checks them.

Dimension keys: `gateway_id`, `camera_id`, plus `decision` (Verdicts), `rule` (Suppressed),
`reason` (Dropped, DeadLetters), `label` and `source` (feedback), `series` (drift). Cloud lines carry
`service` and the event id as properties (not dimensions).
"""

from __future__ import annotations

NAMESPACE = "Vigia"

# Emitted by the cloud (verifier pipeline, runtimes, feedback, drift).
CLOUD_METRICS: dict[str, str] = {
    "CandidatesReceived": "Count",  # every candidate handled (processed, duplicate or dead-lettered)
    "ClipsVerified": "Count",  # candidates whose clip the verifier fetched and examined
    "FramesVerified": "Count",  # frames the verifier looked at
    "Verdicts": "Count",  # by `decision`: confirmed / rejected / uncertain
    "Notifications": "Count",  # alerts published (confirmed, once per event)
    "Duplicates": "Count",  # redeliveries answered from the store
    "DeadLetters": "Count",  # by `reason`
    "VerifierErrors": "Count",  # transient failures left for a retry
    "VerifierLatency": "Milliseconds",  # the verify call alone
    "QueueAge": "Seconds",  # candidate sent → picked up by the verifier
    "feedback": "Count",  # by `label` and `source` (cloud/feedback/recording.py names it in lower case)
    # cloud/drift.py, per camera: a camera whose scores or alert rate moved against its reference window
    "DriftFlagged": "Count",
    "ScoreDriftPsi": "None",
    "ScoreDriftKs": "None",
    "AlertRateRatio": "None",
}

# Emitted by the gateway (edge_agent/metrics.py keeps its own copy: the two packages never import each other).
EDGE_METRICS: dict[str, str] = {
    "FramesProcessed": "Count",
    "DetectorCalls": "Count",
    "ClipsProcessed": "Count",  # clips (or live runs) the gateway finished reading
    "ClipsFailed": "Count",  # clips it could not read
    "Candidates": "Count",  # candidates accepted into the outbox
    "Suppressed": "Count",  # by `rule`
    "Dropped": "Count",  # by `reason`
    "Heartbeat": "Count",  # one per heartbeat: a silent gateway stops sending it
    "OutboxPending": "Count",
    "CameraUp": "None",  # 1 connected / 0 otherwise, per camera, from the heartbeat
    "FramesDropped": "Count",  # since the previous heartbeat
    "Reconnects": "Count",  # since the previous heartbeat
}

ALL_METRICS: dict[str, str] = {**CLOUD_METRICS, **EDGE_METRICS}

# CloudWatch's EMF units (the subset Vigia uses plus the common ones).
UNITS = frozenset({
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
})
