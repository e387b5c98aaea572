"""The PutMedia ACK stream: each EventType parsed, each ErrorId mapped to retry or refuse."""

from __future__ import annotations

import json

import pytest

from edge_agent.clip_upload import UploadRefused
from edge_agent.clip_upload.kvs import Ack, AckDecoder, error_action, error_name, parse_ack, stream_name


def test_each_event_type_is_parsed() -> None:
    events = [
        {"EventType": "BUFFERING", "FragmentTimecode": 1764500000123, "FragmentNumber": "9134"},
        {"EventType": "RECEIVED", "FragmentTimecode": 1764500000123, "FragmentNumber": "9134"},
        {"EventType": "PERSISTED", "FragmentTimecode": 1764500000123, "FragmentNumber": "9134"},
        {"EventType": "ERROR", "FragmentTimecode": 1764500002123, "ErrorId": 4006, "ErrorCode": "INVALID_MKV_DATA"},
        {"EventType": "IDLE"},
    ]
    acks = AckDecoder().feed(b"".join(json.dumps(e).encode() + b"\n" for e in events))
    assert acks == [
        Ack("BUFFERING", 1764500000123, "9134"), Ack("RECEIVED", 1764500000123, "9134"),
        Ack("PERSISTED", 1764500000123, "9134"), Ack("ERROR", 1764500002123, None, 4006, "INVALID_MKV_DATA"),
        Ack("IDLE"),
    ]


def test_objects_cut_anywhere_and_without_newlines_are_reassembled() -> None:
    data = b'{"EventType":"RECEIVED","FragmentTimecode":5}{"EventType":"PERSISTED","FragmentTimecode":5}'
    decoder = AckDecoder()
    acks = [ack for i in range(0, len(data), 7) for ack in decoder.feed(data[i:i + 7])]
    assert acks == [Ack("RECEIVED", 5), Ack("PERSISTED", 5)]


def test_an_object_without_event_type_is_not_an_ack() -> None:
    with pytest.raises(ValueError, match="without EventType"):
        parse_ack({"FragmentTimecode": 5})


@pytest.mark.parametrize(("error_id", "action", "name"), [
    (4000, "retry", "STREAM_READ_ERROR"),
    (4003, "retry", "MAX_CONNECTION_DURATION_REACHED"),
    (4008, "retry", "STREAM_NOT_ACTIVE"),
    (5000, "retry", "INTERNAL_ERROR"),
    (5001, "retry", "ARCHIVAL_ERROR"),
    (5099, "retry", "ERROR_5099"),
    (4001, "refuse", "MAX_FRAGMENT_SIZE_REACHED"),
    (4004, "refuse", "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS"),
    (4006, "refuse", "INVALID_MKV_DATA"),
    (4007, "refuse", "INVALID_PRODUCER_TIMESTAMP"),
    (4500, "refuse", "KMS_KEY_ACCESS_DENIED"),
    (4999, "refuse", "ERROR_4999"),
])
def test_error_ids_map_to_retry_or_refuse(error_id: int, action: str, name: str) -> None:
    assert error_action(error_id) == action
    assert error_name(error_id) == name


def test_stream_names_follow_the_thing_and_camera() -> None:
    assert stream_name("gw-1", "cam-front") == "vigia-gw-1-cam-front"
    with pytest.raises(UploadRefused, match="not a valid Kinesis Video stream name"):
        stream_name("gw 1", "cam/front")
