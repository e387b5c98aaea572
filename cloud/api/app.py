"""The review API: routes → store, media and feedback, independent of the HTTP server that carries it.

`ConsoleApi.handle(Request) -> Response`. Every error is JSON `{"error": "..."}` with a status that says
whose fault it was: 400 bad parameter or body, 401 no/bad token, 403 foreign origin or host, 404 unknown
event or review set, 405 wrong method, 411/413 body length, 416 bad range, 500 (logged) for the rest.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cloud.api.media import MediaReader
from cloud.api.playable import ClipNotConvertible, PlayableCache
from cloud.api.queries import LABELS, BadQuery, event_filters
from cloud.api.views import event_detail, event_summary
from cloud.ports import EventStore
from contracts import validate_event_id

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
STATIC_DIR = Path(__file__).resolve().parent.parent / "console"
STATIC_FILES = {  # the only files the page is made of: nothing else under the folder is served
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
COOKIE = "vigia_token"
_REVIEW_SET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_EVENT_ROUTE = re.compile(r"^/api/events/(?P<id>[^/]+)(?:/(?P<part>snapshot|clip|clip\.mp4|feedback))?$")
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Request:
    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""


@dataclass
class Response:
    status: int = 200
    body: bytes | Iterator[bytes] = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None  # for streamed bodies


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), default=str).encode()
    return Response(status, body, "application/json", {"Cache-Control": "no-store", **(headers or {})})


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message}, status, headers)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single byte range asked for (inclusive), None for the whole object; HttpError 416 if unsatisfiable."""
    if not header:
        return None
    match = _RANGE_RE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None  # several ranges or a unit we do not speak: the whole object (RFC 9110 allows it)
    first, last = match.group(1), match.group(2)
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0:
            raise HttpError(416, "empty suffix range", {"Content-Range": f"bytes */{size}"})
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise HttpError(416, f"range {header!r} is outside the {size} bytes", {"Content-Range": f"bytes */{size}"})
    return start, end


class ConsoleApi:
    """Routes of the review console. `token`: when set, every /api/ call needs it (bearer or cookie)."""

    def __init__(
        self,
        events: EventStore,
        media: MediaReader,
        *,
        playable: PlayableCache,
        review_root: Any = None,
        token: str | None = None,
        default_by: str = "console",
        allowed_hosts: frozenset[str] | None = None,
        on_not_person: Callable[..., Any] | None = None,
        mode: str = "local",
    ) -> None:
        self.events = events
        self.media = media
        self.playable = playable
        self.review_root = review_root
        self.token = token
        self.default_by = default_by
        self.allowed_hosts = allowed_hosts
        self.on_not_person = on_not_person
        self.mode = mode
        self._frame_size = lru_cache(maxsize=256)(self._probe_frame_size)

    # -- entry ------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        try:
            self._check_host(req)
            return self._route(req)
        except HttpError as exc:
            return error_response(exc.status, exc.message, exc.headers)
        except Exception:
            log.exception("request failed", extra={"method": req.method, "path": req.path})
            return error_response(500, "internal error (logged on the server)")

    def _check_host(self, req: Request) -> None:
        # Without a token the console trusts whoever reaches the loopback port; a foreign Host header
        # would mean a DNS-rebinding page in the user's browser speaking to it.
        if self.allowed_hosts is not None and req.headers.get("host", "") not in self.allowed_hosts:
            raise HttpError(403, f"host {req.headers.get('host', '')!r} is not this console")

    def _route(self, req: Request) -> Response:
        path = req.path
        if path == "/favicon.ico":
            return Response(204, b"", "image/x-icon", {"Cache-Control": "max-age=86400"})
        if path == "/" or path.startswith("/static/"):
            self._method(req, "GET")
            return self._static("index.html" if path == "/" else path.removeprefix("/static/"))
        if not path.startswith("/api/"):
            raise HttpError(404, f"no such page {path!r}")
        if path == "/api/session":
            self._method(req, "POST")
            return self._session(req)
        self._authorize(req)
        if path == "/api/health":
            self._method(req, "GET")
            return json_response({"ok": True, "mode": self.mode, "auth": self.token is not None})
        if path == "/api/events":
            self._method(req, "GET")
            return self._list(req)
        if path == "/api/review-sets":
            self._method(req, "GET")
            return self._review_sets()
        if path.startswith("/api/review-sets/"):
            self._method(req, "GET")
            return self._review_set(path.removeprefix("/api/review-sets/"))
        match = _EVENT_ROUTE.match(path)
        if not match:
            raise HttpError(404, f"no such API route {path!r}")
        event_id, part = match.group("id"), match.group("part")
        try:
            validate_event_id(event_id)
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None
        if part == "feedback":
            self._method(req, "POST")
            return self._feedback(req, event_id)
        self._method(req, "GET")
        record = self._record(event_id)
        if part is None:
            return json_response(event_detail(record, self._frame_size(record.clip_key) if record.clip_key else None))
        if part == "snapshot":
            return self._object(req, record.snapshot_key, "snapshot", download_name=None)
        if part == "clip":
            download = parse_qs(req.query).get("download") == ["1"]
            name = f"{event_id}{Path(record.clip_key).suffix}" if record.clip_key else None
            return self._object(req, record.clip_key, "clip", download_name=name if download else None)
        return self._playable(req, record)

    @staticmethod
    def _method(req: Request, allowed: str) -> None:
        if req.method not in (allowed, "HEAD" if allowed == "GET" else allowed):
            raise HttpError(405, f"{req.method} is not allowed here; use {allowed}", {"Allow": allowed})

    # -- auth ---------------------------------------------------------------------------------------
    def _token_matches(self, given: str | None) -> bool:
        return bool(self.token and given and hmac.compare_digest(given.encode(), self.token.encode()))

    def _authorize(self, req: Request) -> None:
        if self.token is None:
            return
        auth = req.headers.get("authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if self._token_matches(bearer) or self._token_matches(_cookie(req.headers.get("cookie", ""), COOKIE)):
            return
        raise HttpError(401, "a valid bearer token is required (Authorization: Bearer <VIGIA_API_TOKEN>)",
                        {"WWW-Authenticate": 'Bearer realm="vigia"'})

    def _session(self, req: Request) -> Response:
        """Trade the token for an HttpOnly cookie, so the page's <img> and <video> requests carry it."""
        if self.token is None:
            return json_response({"auth": False})
        body = self._json_body(req)
        if not self._token_matches(body.get("token") if isinstance(body.get("token"), str) else None):
            raise HttpError(401, "wrong token")
        cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
        return json_response({"auth": True}, headers={"Set-Cookie": cookie})

    # -- events -----------------------------------------------------------------------------------
    def _record(self, event_id: str):
        record = self.events.get(event_id)
        if record is None:
            raise HttpError(404, f"no event {event_id}")
        return record

    def _list(self, req: Request) -> Response:
        try:
            filters = event_filters(req.query)
        except BadQuery as exc:
            raise HttpError(400, str(exc)) from None
        records = self.events.query(**filters)
        return json_response({"events": [event_summary(r) for r in records], "count": len(records),
                              "limit": filters["limit"]})

    def _json_body(self, req: Request) -> dict[str, Any]:
        ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            # also what keeps a foreign page's plain form post out: JSON needs a CORS preflight we never grant
            raise HttpError(415, "send the body as Content-Type: application/json")
        origin = req.headers.get("origin")
        if origin and origin.split("://", 1)[-1] != req.headers.get("host", ""):
            raise HttpError(403, f"origin {origin!r} may not write here")
        try:
            body = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise HttpError(400, f"body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise HttpError(400, f"body is a JSON {type(body).__name__}, expected an object")
        return body

    def _feedback(self, req: Request, event_id: str) -> Response:
        from cloud.feedback import LearningFailed, UnknownEvent, record_feedback

        body = self._json_body(req)
        unknown = sorted(set(body) - {"label", "note", "by"})
        if unknown:
            raise HttpError(400, f"unknown field(s) {', '.join(unknown)}; send label, note, by")
        label, note, by = body.get("label"), body.get("note"), body.get("by") or self.default_by
        if not isinstance(label, str):
            raise HttpError(400, f"label {label!r} is not one of {', '.join(LABELS)}")
        if note is not None and not isinstance(note, str):
            raise HttpError(400, "note must be text")
        if not isinstance(by, str) or not 1 <= len(by) <= 128:
            raise HttpError(400, "by must be text of 1-128 characters")
        source = "console" if req.headers.get("x-vigia-client") == "console" else "api"
        try:
            record = record_feedback(self.events, event_id, label, by=by, note=note, source=source,
                                     on_not_person=self.on_not_person)
        except UnknownEvent:
            raise HttpError(404, f"no event {event_id}") from None
        except LearningFailed as exc:  # the label is stored; the memory update failed and is retried on resend
            raise HttpError(500, str(exc)) from None
        except ValueError as exc:  # bad label, note or name (pydantic's errors are ValueErrors too)
            raise HttpError(400, _first_line(str(exc))) from None
        log.info("feedback recorded", extra={"event_id": event_id, "label": label, "source": source})
        return json_response(event_detail(record, self._frame_size(record.clip_key) if record.clip_key else None))

    # -- media --------------------------------------------------------------------------------------
    def _object(self, req: Request, key: str | None, what: str, download_name: str | None) -> Response:
        info = self.media.stat(key) if key else None
        if info is None:
            raise HttpError(404, f"this event has no {what}" if not key else f"the {what} is no longer stored")
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
        if download_name:
            headers["Content-Disposition"] = f'attachment; filename="{download_name}"'
        return self._ranged(req, info.size, info.content_type, headers,
                            lambda start, end: self.media.read(key, start, end))

    @staticmethod
    def _ranged(req: Request, size: int, content_type: str, headers: dict[str, str],
                read: Callable[[int, int], Iterator[bytes]]) -> Response:
        span = parse_range(req.headers.get("range"), size) if size else None
        if span is None:
            return Response(200, read(0, size - 1) if size else b"", content_type, headers, length=size)
        start, end = span
        headers = {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}
        return Response(206, read(start, end), content_type, headers, length=end - start + 1)

    def _playable(self, req: Request, record) -> Response:
        if not record.clip_key or self.media.stat(record.clip_key) is None:
            raise HttpError(404, "this event has no clip")
        key = record.clip_key
        suffix = Path(key).suffix or ".bin"
        try:
            path = self.playable.get(record.event_id, lambda work: self.media.copy_to(key, work / f"clip{suffix}"))
        except ClipNotConvertible as exc:
            log.warning("clip not convertible", extra={"event_id": record.event_id, "error": str(exc)})
            raise HttpError(422, f"{exc}; download the original instead") from None
        size = path.stat().st_size

        def read(start: int, end: int) -> Iterator[bytes]:
            with path.open("rb") as fh:
                fh.seek(start)
                left = end - start + 1
                while left > 0 and (chunk := fh.read(min(256 * 1024, left))):
                    left -= len(chunk)
                    yield chunk

        headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
        return self._ranged(req, size, "video/mp4", headers, read)

    def _probe_frame_size(self, key: str) -> tuple[int, int] | None:
        """The clip's frame size, when the clip is a local file (the verifier's boxes are in its pixels)."""
        local = getattr(self.media, "local_path", None)
        path = local(key) if local else None
        if path is None:
            return None
        try:
            import av

            with av.open(str(path)) as probe:
                ctx = probe.streams.video[0].codec_context
                return (ctx.width, ctx.height) if ctx.width and ctx.height else None
        except Exception as exc:  # an image "clip", a damaged file: fall back to the gateway's frame size
            log.info("clip frame size unknown", extra={"key": key, "error": str(exc)})
            return None

    # -- static page and review sets ----------------------------------------------------------------
    @staticmethod
    def _static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HttpError(404, f"no such file {name!r}")
        body = (STATIC_DIR / name).read_bytes()
        return Response(200, body, STATIC_FILES[name], {"Cache-Control": "no-cache"})

    def _review_sets(self) -> Response:
        from cloud.sampler import list_review_sets

        if self.review_root is None:
            return json_response({"review_sets": [], "root": None})
        return json_response({"review_sets": list_review_sets(self.review_root), "root": str(self.review_root)})

    def _review_set(self, name: str) -> Response:
        from cloud.sampler import read_review_set

        if not _REVIEW_SET_RE.match(name) or ".." in name:
            raise HttpError(400, f"review set name {name!r} is not valid")
        if self.review_root is None:
            raise HttpError(404, "no review folder is configured")
        try:
            return json_response(read_review_set(self.review_root, name))
        except LookupError:  # the sampler's UnknownReviewSet
            raise HttpError(404, f"no review set {name!r}") from None
        except ValueError as exc:
            raise HttpError(400, str(exc)) from None


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _first_line(text: str) -> str:
    """Pydantic's messages run over several lines; the first two name the field and the problem."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines[:3]) if lines else text
