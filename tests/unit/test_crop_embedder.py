"""The crop embedder on the real prepared model: the backbone cut, the same vector for the same crop, and
a person's crop nearer to another person's than to a cat's (scikit-image's pictures)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skimage_data

from models.learned.crops import context_crop


@pytest.fixture(scope="module")
def embedder():
    pytest.importorskip("openvino")
    from models.learned.embedder import CropEmbedder
    from models.prepare import find_prepared

    try:
        find_prepared("ssdlite-person")
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return CropEmbedder(threads=2)


def bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def test_same_crop_same_vector_and_persons_are_nearer_each_other(embedder) -> None:
    astronaut = bgr(skimage_data.astronaut())
    person = context_crop(astronaut, (140, 30, 360, 512))
    person_flipped = context_crop(cv2.flip(astronaut, 1), (512 - 360, 30, 512 - 140, 512))
    cat = context_crop(bgr(skimage_data.chelsea()), (90, 20, 400, 300))
    vectors = embedder.embed([person, cat, person_flipped, person])
    assert vectors.shape == (4, 1280) and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors[0], vectors[3])  # f32 pinned: the same crop, the same bits

    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    assert cosine(vectors[0], vectors[2]) > cosine(vectors[0], vectors[1])
    assert len(embedder.identity) == 16 and embedder.embed([]).shape == (0, 1280)
    with pytest.raises(ValueError, match="uint8 BGR"):
        embedder.embed([person.astype(np.float32)])
