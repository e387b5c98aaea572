"""The review API and console: `build_console(settings, ...)` → a ConsoleServer to `serve_forever()`.

Routes (JSON unless said): GET `/` (the page), `/api/events?camera=&verdict=&since=&until=&score_low=
&score_high=&label=&limit=`, `/api/events/{id}`, `/api/events/{id}/snapshot` (JPEG), `/api/events/{id}/clip`
(the stored clip, Range; `?download=1`), `/api/events/{id}/clip.mp4` (browser-playable copy),
POST `/api/events/{id}/feedback` {"label", "note"?, "by"?}, `/api/review-sets`, `/api/review-sets/{name}`,
POST `/api/session` {"token"} (cookie for the page when a token is required), `/api/health`.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
from pathlib import Path

from cloud.api.app import ConsoleApi
from cloud.api.media import FolderMedia, S3Media
from cloud.api.playable import PlayableCache
from cloud.api.server import ConsoleServer, make_server
from cloud.settings import CloudSettings

__all__ = ["ConsoleApi", "ConsoleServer", "build_console", "is_loopback", "make_server"]


class ConsoleRefused(ValueError):
    """The console would start unprotected or without a store: the message says what to change."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _local_user() -> str:
    """Who labels on the embedded default: the account running the console (the page may name someone else)."""
    try:
        return getpass.getuser()[:128] or "console"
    except (KeyError, OSError):
        return "console"


def _loopback_hosts(port: int) -> frozenset[str]:
    return frozenset(f"{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]"))


def build_console(
    settings: CloudSettings,
    *,
    cache_dir: Path,
    host: str = "127.0.0.1",
    port: int = 8600,
    token: str | None = None,
    review_root: str | Path | None = None,
    default_by: str | None = None,
) -> ConsoleServer:
    """Wire the API to the stores `settings` name and bind it.

    AWS mode always needs a token; so does any address other than loopback. Without a token only requests
    that name this loopback address as their Host are answered (no DNS rebinding into the embedded store)."""
    from cloud.feedback.wiring import build_feedback

    aws = settings.store == "aws"
    if token is not None and len(token) < 16:
        raise ConsoleRefused("VIGIA_API_TOKEN is too short: use at least 16 random characters")
    if aws and not token:
        raise ConsoleRefused("VIGIA_STORE=aws: set VIGIA_API_TOKEN (the bearer token the console will require)")
    if not token and not is_loopback(host):
        raise ConsoleRefused(f"--host {host} is reachable from other machines: set VIGIA_API_TOKEN or bind 127.0.0.1")
    if not aws and not (settings.data_dir / "events.sqlite3").is_file():
        raise ConsoleRefused(f"no event store at {settings.data_dir / 'events.sqlite3'}: run `vigia demo "
                             "--data-dir D` first, or point --data-dir at a demo's data dir")
    feedback = build_feedback(settings)
    if aws:
        assert settings.bucket  # CloudSettings validated it
        media = S3Media(settings.bucket)
        bucket = os.environ.get("VIGIA_REVIEW_BUCKET")
        review = review_root if review_root is not None else (f"s3://{bucket}" if bucket else None)
    else:
        from cloud.sampler.settings import default_review_root

        media = FolderMedia(settings.data_dir / "objects")
        review = review_root if review_root is not None else default_review_root(settings.data_dir)
    api = ConsoleApi(
        feedback.events, media, playable=PlayableCache(cache_dir), review_root=review, token=token or None,
        default_by=default_by or ("api" if aws else _local_user()),
        on_not_person=feedback.learner.learn, mode=settings.store,
    )
    server = make_server(api, host, port)
    if not token:
        api.allowed_hosts = _loopback_hosts(server.server_address[1])
    return server
