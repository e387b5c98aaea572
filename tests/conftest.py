"""Shared fixtures: prepared models and real footage that packages ship (Debian opencv-doc, scikit-image)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.sample_media import fetch_opencv_doc, opencv_doc_dir


@pytest.fixture(scope="session")
def opencv_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with vtest.avi and tree.avi; fetched with apt-get download when opencv-doc is not installed."""
    found = opencv_doc_dir()
    if found is not None:
        return found
    try:
        return fetch_opencv_doc(tmp_path_factory.mktemp("opencv-doc"))
    except Exception as exc:  # a clear failure, not a silent skip: the integration tests need this footage
        pytest.fail(f"Debian's opencv-doc clips are missing and could not be fetched: {exc}")


@pytest.fixture(scope="session")
def vtest(opencv_data: Path) -> Path:
    return opencv_data / "vtest.avi"


@pytest.fixture(scope="session")
def tree_clip(opencv_data: Path) -> Path:
    return opencv_data / "tree.avi"


@pytest.fixture(scope="session")
def gateway_model_dir() -> Path:
    from models.catalog import GATEWAY_MODEL
    from models.prepare import prepare

    path, _ = prepare(GATEWAY_MODEL, "FP32")
    return path


@pytest.fixture(scope="session")
def gateway_detector(gateway_model_dir: Path):
    from models.detector import PersonDetector

    return PersonDetector(gateway_model_dir, mode="throughput")


@pytest.fixture(scope="session")
def pictures() -> dict:
    """scikit-image's pictures as BGR: astronaut and camera hold a person; chelsea, coffee, rocket do not."""
    import cv2
    from skimage import data

    out = {name: cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR)
           for name in ("astronaut", "chelsea", "coffee", "rocket")}
    out["camera"] = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)
    return out
