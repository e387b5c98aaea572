"""A real RTSP server for tests: GStreamer's gst-rtsp-server (Debian `gir1.2-gst-rtsp-server-1.0`).

Two halves in one file:
- run as a script under Debian's /usr/bin/python3 (which has `gi`), it serves an H.264 Matroska file
  at rtsp://127.0.0.1:PORT/cam (TCP), in real time, each client from the start of the file, optionally
  behind basic authentication, and prints READY when it listens;
- imported by the tests (the venv's python), `RtspServer` starts, kills and restarts that subprocess on
  a fixed loopback port, and `make_h264_footage` cuts real footage (OpenCV's vtest.avi) into the file,
  looped so the stream outlasts any test.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
MOUNT = "/cam"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gstreamer_available() -> str | None:
    """None when the server can run here, else why not (the tests skip with that reason)."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} missing"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
         "from gi.repository import GstRtspServer; from gi.repository import Gst; Gst.init(None); "
         "assert all(Gst.ElementFactory.find(e) for e in ('matroskademux', 'h264parse', 'rtph264pay'))"],
        capture_output=True, text=True, timeout=60, check=False)
    if probe.returncode != 0:
        return ("GStreamer's RTSP server is missing (make services installs gir1.2-gst-rtsp-server-1.0, "
                f"python3-gi, gstreamer1.0-plugins-*): {probe.stderr.strip()[-300:]}")
    return None


def make_h264_footage(src: Path, dst: Path, *, seconds: float = 8.0, loops: int = 30,
                      width: int = 384, fps: int = 10) -> Path:
    """`seconds` of `src` scaled to `width`, H.264 (a keyframe a second), repeated `loops` times.

    The repeat is a remux of the same packets with shifted times: encoding once keeps this cheap.
    """
    import av

    with av.open(str(src)) as source:
        stream = source.streams.video[0]
        height = round(stream.codec_context.height * width / stream.codec_context.width / 2) * 2
        with av.open(str(dst) + ".once.mkv", "w", format="matroska") as once:
            out = once.add_stream("libx264", rate=fps, options={
                "preset": "ultrafast", "tune": "zerolatency", "g": str(fps), "bf": "0"})
            out.width, out.height, out.pix_fmt = width, height, "yuv420p"
            out.codec_context.thread_count = 1
            for index, frame in enumerate(source.decode(stream)):
                if index >= seconds * fps:
                    break
                scaled = frame.reformat(width=width, height=height, format="yuv420p")
                scaled.pts, scaled.time_base = index, Fraction(1, fps)
                once.mux(out.encode(scaled))
            once.mux(out.encode(None))
    return loop_remux(Path(str(dst) + ".once.mkv"), dst, loops)


def loop_remux(once_path: Path, dst: Path, loops: int) -> Path:
    """`once_path` repeated `loops` times into `dst` by remuxing its packets with shifted times (no
    re-encoding); `once_path` is removed."""
    import av

    with av.open(str(once_path)) as once:
        stamps = [int(p.pts) for p in once.demux(once.streams.video[0]) if p.size]
    span = stamps[-1] + (stamps[1] - stamps[0])
    with av.open(str(dst), "w", format="matroska") as looped:
        out = None
        for loop in range(loops):
            with av.open(str(once_path)) as once:
                stream = once.streams.video[0]
                out = out or looped.add_stream_from_template(stream)
                for packet in once.demux(stream):
                    if packet.size:
                        packet.pts += loop * span
                        packet.dts += loop * span
                        packet.stream = out
                        looped.mux(packet)
    once_path.unlink()
    return dst


class RtspServer:
    """The server subprocess on one loopback port; `kill()` and `start()` again to drop and restore it."""

    def __init__(self, media: Path, port: int | None = None, user: str | None = None,
                 password: str | None = None) -> None:
        self.media = media
        self.port = port or free_port()
        self.user, self.password = user, password
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}{MOUNT}"

    def start(self, timeout_s: float = 30.0) -> None:
        args = [SYSTEM_PYTHON, __file__, "--port", str(self.port), "--media", str(self.media)]
        if self.user:
            args += ["--user", self.user, "--password", self.password or ""]
        # The system python must not pick up the venv's packages.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        deadline = time.monotonic() + timeout_s
        while True:
            # stderr to a file: a pipe nobody reads would block the server once GStreamer's warnings fill it.
            with tempfile.TemporaryFile("w+") as errors:
                self._proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
                assert self._proc.stdout is not None
                line = self._proc.stdout.readline().strip()
                if line == "READY":
                    return
                self._proc.wait()  # it exited: why
                errors.seek(0)
                err = errors.read()
            if "Address already in use" not in err or time.monotonic() > deadline:
                raise RuntimeError(f"RTSP server did not start: {line} {err[-500:]}")
            time.sleep(0.2)  # the old listener's port is still being released

    def kill(self) -> None:
        """SIGKILL, like a camera losing power: no RTSP teardown, connections just drop."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(timeout=10)
        self._proc = None

    def stop(self) -> None:
        self.kill()


# -- the server side (Debian's python3 with gi) --------------------------------------------------------
def serve(port: int, media: Path, user: str | None, password: str | None) -> None:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    gi.require_version("GstRtsp", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f'( filesrc location="{media}" ! matroskademux ! h264parse '
                       "! rtph264pay name=pay0 pt=96 config-interval=-1 )")
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    factory.set_shared(False)  # each client from the start of the file: its times restart at 0
    if user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password or ""), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        permissions.add_permission_for_role("viewer", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(MOUNT, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}: Address already in use", file=sys.stderr, flush=True)
        sys.exit(2)
    print("READY", flush=True)
    GLib.MainLoop().run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--media", type=Path, required=True)
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()
    serve(args.port, args.media, args.user, args.password)


if __name__ == "__main__":
    main()
