"""Real pictures and footage that ship in packages (scikit-image, Debian's opencv-doc): test and demo media."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

OPENCV_DOC_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def opencv_doc_dir() -> Path | None:
    """Directory holding Debian opencv-doc's sample clips, if installed or unpacked (VIGIA_OPENCV_DOC)."""
    for candidate in (os.environ.get("VIGIA_OPENCV_DOC"), str(OPENCV_DOC_DATA)):
        if candidate and (Path(candidate) / "vtest.avi").exists():
            return Path(candidate)
    return None


def fetch_opencv_doc(dest: Path) -> Path:
    """Get vtest.avi and tree.avi without a root install: apt-get download + dpkg-deb -x."""
    target = dest / "opencv-doc"
    data = target / "usr/share/doc/opencv-doc/examples/data"
    if (data / "vtest.avi").exists():
        return data
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, capture_output=True, text=True)
        if got.returncode != 0 and os.geteuid() == 0:  # a fresh machine may have no package lists yet
            subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
            got = subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, capture_output=True, text=True)
        if got.returncode != 0:
            raise RuntimeError(f"apt-get download opencv-doc failed: {got.stderr.strip()[-300:]}")
        deb = next(Path(tmp).glob("opencv-doc_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    for packed in data.glob("*.gz"):  # Debian compresses some docs
        subprocess.run(["gunzip", "-f", str(packed)], check=False)
    return data


def sample_clips() -> list[Path]:
    base = opencv_doc_dir()
    if base is None:
        return []
    return [p for p in (base / "vtest.avi", base / "tree.avi") if p.exists()]


def sample_images() -> list[np.ndarray]:
    """BGR pictures from scikit-image's wheel (astronaut and camera hold a person; the rest do not)."""
    try:
        from skimage import data
    except ImportError:
        return []
    import cv2

    out = []
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        image = getattr(data, name)()
        out.append(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    camera = data.camera()
    out.append(cv2.cvtColor(camera, cv2.COLOR_GRAY2BGR))
    return out


def which(cmd: str) -> bool:
    return shutil.which(cmd) is not None
