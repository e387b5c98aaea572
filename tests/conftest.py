"""Shared fixtures: prepared models and real footage that packages ship (Debian opencv-doc, scikit-image)."""

from __future__ import annotations

import faulthandler
import os
import sys
from pathlib import Path
from typing import TextIO

import pytest

from models.sample_media import fetch_opencv_doc, opencv_doc_dir

# When a native library kills the run (abort, segfault), say which test was running: the crashing thread's
# stack (not every thread's: CI shows only the tail of the output) and the test's id in a file `make test`
# prints. pytest's own faulthandler plugin is off (pyproject addopts) so that this one is the only handler.
RUNNING_TEST_FILE = os.environ.get("VIGIA_RUNNING_TEST_FILE")
_CRASH_STDERR = pytest.StashKey[TextIO]()


def pytest_configure(config: pytest.Config) -> None:
    # a duplicate of the real stderr: pytest redirects fd 2 into its capture file while a test runs
    stderr = os.fdopen(os.dup(sys.stderr.fileno()), "w")
    config.stash[_CRASH_STDERR] = stderr
    faulthandler.enable(file=stderr, all_threads=False)


def pytest_unconfigure(config: pytest.Config) -> None:
    faulthandler.disable()
    config.stash[_CRASH_STDERR].close()


def pytest_runtest_logstart(nodeid: str, location: tuple) -> None:
    if RUNNING_TEST_FILE:
        Path(RUNNING_TEST_FILE).write_text(nodeid + "\n")


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
