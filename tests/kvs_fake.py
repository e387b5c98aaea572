"""A FAKE Kinesis Video Streams service for tests: real HTTP on loopback, not AWS.

No local stand-in for the Kinesis Video media API exists (moto has only the control plane, and its
GetDataEndpoint returns real AWS host names), so this fake speaks the wire protocol the gateway and the
verifier use, and nothing else:

- every request must carry a SigV4 signature (service "kinesisvideo") that botocore, given the fake's
  known credentials, computes to the same value; otherwise 403 InvalidSignatureException /
  UnrecognizedClientException, as AWS answers;
- control plane (boto3 `kinesisvideo`): DescribeStream, CreateStream (records DataRetentionInHours),
  GetDataEndpoint (returns the fake's own URL, for every APIName);
- PutMedia: reads the chunked Matroska body, splits it into clusters with an EBML walker, stores each
  fragment with its producer timestamp (ABSOLUTE cluster timecode) and answers with an ACK event stream
  (BUFFERING, RECEIVED, PERSISTED per fragment; ERROR 4006 for bytes that are not Matroska);
- archived media (boto3 `kinesis-video-archived-media`): ListFragments and GetClip with a
  PRODUCER_TIMESTAMP range, the clip being an MKV built from the persisted header and clusters.

Faults on request (`FakeKvs.faults`): "throttle" (HTTP 400 ClientLimitExceededException on PutMedia),
"ack_error:<id>" (an ERROR ACK after the first fragment), "drop_after:<n>" (persist n fragments, ACK
them, then drop the connection without ending the response).
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from edge_agent.clip_upload.mkv import MkvError, cluster_span, split

ACCESS_KEY = "AKIAFAKEKVS000000000"
SECRET_KEY = "fake-kvs-secret-key-for-tests-only"
REGION = "us-east-1"
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
                   r"/aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?Signature=(?P<sig>[0-9a-f]{64})")


@dataclass
class StoredFragment:
    number: str
    timecode_ms: int  # producer timestamp of the cluster
    first_ms: int
    last_ms: int
    data: bytes
    header: bytes  # the stream header (EBML, Info, Tracks) this cluster was sent under


@dataclass
class FakeStream:
    name: str
    retention_hours: int
    media_type: str
    created: datetime
    fragments: list[StoredFragment] = field(default_factory=list)

    @property
    def arn(self) -> str:
        return f"arn:aws:kinesisvideo:{REGION}:000000000000:stream/{self.name}/1"


class FakeKvs:
    """Start with `FakeKvs().start()`; `url` is both the control-plane and the data endpoint."""

    def __init__(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> None:
        self.credentials = {access_key: secret_key}
        self.streams: dict[str, FakeStream] = {}
        self.faults: deque[str] = deque()
        self.put_media_calls = 0
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self._next_fragment = 1
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> FakeKvs:
        fake = self

        class Handler(_Handler):
            kvs = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeKvs:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- signatures ----------------------------------------------------------------------------
    def check_signature(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str | None:
        """None if the request is signed by known credentials, else the AWS error type to answer."""
        match = _AUTH.match(headers.get("authorization", ""))
        amz_date = headers.get("x-amz-date", "")
        if not match or not amz_date:
            return "MissingAuthenticationTokenException"
        secret = self.credentials.get(match["key"])
        if secret is None:
            return "UnrecognizedClientException"
        if match["service"] != "kinesisvideo":
            return "InvalidSignatureException"
        signed = match["signed"].split(";")
        request = AWSRequest(method=method, url=f"http://{headers.get('host', '')}{path}",
                             headers={name: headers.get(name, "") for name in signed}, data=body)
        request.context["timestamp"] = amz_date
        auth = SigV4Auth(Credentials(match["key"], secret, headers.get("x-amz-security-token")),
                         match["service"], match["region"])
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        return None if expected == match["sig"] else "InvalidSignatureException"

    # -- control plane -------------------------------------------------------------------------
    def describe_stream(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        stream = self.streams.get(str(body.get("StreamName")))
        if stream is None:
            return _error(404, "ResourceNotFoundException", "stream not found")
        return 200, {"StreamInfo": {"StreamName": stream.name, "StreamARN": stream.arn, "Status": "ACTIVE",
                                    "MediaType": stream.media_type, "Version": "1",
                                    "DataRetentionInHours": stream.retention_hours,
                                    "CreationTime": stream.created.timestamp()}}

    def create_stream(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = str(body.get("StreamName", ""))
        if not re.match(r"^[a-zA-Z0-9_.-]{1,256}$", name):
            return _error(400, "InvalidArgumentException", "bad stream name")
        with self._lock:
            if name in self.streams:
                return _error(400, "ResourceInUseException", "stream exists")
            self.streams[name] = FakeStream(name, int(body.get("DataRetentionInHours", 0)),
                                            str(body.get("MediaType", "")), datetime.now(UTC))
        return 200, {"StreamARN": self.streams[name].arn}

    def get_data_endpoint(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if str(body.get("StreamName")) not in self.streams:
            return _error(404, "ResourceNotFoundException", "stream not found")
        return 200, {"DataEndpoint": self.url}

    # -- PutMedia ------------------------------------------------------------------------------
    def put_media(self, stream_name: str, body: bytes) -> tuple[list[dict[str, Any]], bool]:
        """(ACK events, drop the connection after them)."""
        self.put_media_calls += 1
        fault = self.faults.popleft() if self.faults else ""
        stream = self.streams.get(stream_name)
        if stream is None:
            return [{"EventType": "ERROR", "ErrorId": 4008, "ErrorCode": "STREAM_NOT_ACTIVE"}], False
        try:
            header, clusters = split(body)
            spans = [cluster_span(c.data) for c in clusters]
        except MkvError:
            return [{"EventType": "ERROR", "ErrorId": 4006, "ErrorCode": "INVALID_MKV_DATA"}], False
        acks: list[dict[str, Any]] = []
        drop_after = int(fault.split(":")[1]) if fault.startswith("drop_after:") else None
        for index, (cluster, (first, last)) in enumerate(zip(clusters, spans, strict=True)):
            if drop_after is not None and index >= drop_after:
                return acks, True
            with self._lock:
                number = f"{self._next_fragment:048d}"
                self._next_fragment += 1
            base = {"FragmentTimecode": cluster.timecode_ms, "FragmentNumber": number}
            acks += [{"EventType": "BUFFERING", **base}, {"EventType": "RECEIVED", **base}]
            if fault.startswith("ack_error:"):
                error_id = int(fault.split(":")[1])
                acks.append({"EventType": "ERROR", "ErrorId": error_id, **base})
                return acks, False
            stream.fragments.append(StoredFragment(number, cluster.timecode_ms, first, last, cluster.data, header))
            acks.append({"EventType": "PERSISTED", **base})
        return acks, False

    # -- archived media ------------------------------------------------------------------------
    def _selected(self, body: dict[str, Any], selector_key: str) -> tuple[FakeStream | None, list[StoredFragment]]:
        stream = self.streams.get(str(body.get("StreamName")))
        selector = body.get(selector_key) or {}
        if stream is None:
            return None, []
        window = selector.get("TimestampRange") or {}
        start_ms = round(float(window.get("StartTimestamp", 0)) * 1000)
        end_ms = round(float(window.get("EndTimestamp", 0)) * 1000)
        chosen = [f for f in stream.fragments if f.last_ms >= start_ms and f.first_ms <= end_ms]
        return stream, sorted(chosen, key=lambda f: f.timecode_ms)

    def list_fragments(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        stream, chosen = self._selected(body, "FragmentSelector")
        if stream is None:
            return _error(404, "ResourceNotFoundException", "stream not found")
        return 200, {"Fragments": [{"FragmentNumber": f.number, "FragmentSizeInBytes": len(f.data),
                                    "ProducerTimestamp": f.timecode_ms / 1000, "ServerTimestamp": f.timecode_ms / 1000,
                                    "FragmentLengthInMilliseconds": f.last_ms - f.first_ms} for f in chosen]}

    def get_clip(self, body: dict[str, Any]) -> tuple[int, bytes | dict[str, Any]]:
        selector = body.get("ClipFragmentSelector") or {}
        if selector.get("FragmentSelectorType") != "PRODUCER_TIMESTAMP":
            return _error(400, "InvalidArgumentException", "this fake serves PRODUCER_TIMESTAMP ranges only")
        stream, chosen = self._selected(body, "ClipFragmentSelector")
        if stream is None or not chosen:
            return _error(404, "ResourceNotFoundException", "no fragment in the requested range")
        return 200, chosen[0].header + b"".join(f.data for f in chosen)


def _error(status: int, kind: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"__type": kind, "message": message}


class _Handler(BaseHTTPRequestHandler):
    kvs: FakeKvs
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the fake's state, not its access log."""

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length", 0) or 0))

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if "__type" in payload:
            self.send_header("x-amzn-ErrorType", payload["__type"])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = self._body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?")[0]
        self.kvs.calls.append(path)
        problem = self.kvs.check_signature("POST", self.path, headers, body)
        if problem is not None:
            self._json(403, {"__type": problem, "message": "the request signature does not match"})
            return
        if path == "/putMedia":
            self._put_media(headers, body)
            return
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            self._json(400, {"__type": "InvalidArgumentException", "message": "body is not JSON"})
            return
        routes = {"/describeStream": self.kvs.describe_stream, "/createStream": self.kvs.create_stream,
                  "/getDataEndpoint": self.kvs.get_data_endpoint, "/listFragments": self.kvs.list_fragments}
        if path == "/getClip":
            status, result = self.kvs.get_clip(request)
            if isinstance(result, dict):
                self._json(status, result)
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/x-matroska")
            self.send_header("Content-Length", str(len(result)))
            self.end_headers()
            self.wfile.write(result)
            return
        if path not in routes:
            self._json(404, {"__type": "UnknownOperationException", "message": path})
            return
        self._json(*routes[path](request))

    def _put_media(self, headers: dict[str, str], body: bytes) -> None:
        if headers.get("x-amzn-fragment-timecode-type") not in ("ABSOLUTE", "RELATIVE"):
            self._json(400, {"__type": "InvalidArgumentException", "message": "x-amzn-fragment-timecode-type"})
            return
        if self.kvs.faults and self.kvs.faults[0] == "throttle":
            self.kvs.faults.popleft()
            self.kvs.put_media_calls += 1
            self._json(400, {"__type": "ClientLimitExceededException", "message": "slow down"})
            return
        acks, drop = self.kvs.put_media(headers.get("x-amzn-stream-name", ""), body)
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for ack in acks:
            data = json.dumps(ack).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
        if drop:  # the connection goes away mid-response: no terminating chunk
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")
