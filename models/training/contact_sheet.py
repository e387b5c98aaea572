"""A contact sheet (PNG) so a person can check that augmented crops still look like camera frames.

Each row is one sample (persons and negatives alternating): its label and source on a header strip, then the
original crop and N augmented versions, each captioned with the ops applied.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from models.training.augment import Augmenter
from models.training.dataset_format import SAMPLES_FILE, SampleRow, read_samples

CELL = 128
CAPTION_H = 30  # two short caption lines under each cell
HEADER_H = 16
SHEET_FILE = "contact_sheet.png"
FONT = cv2.FONT_HERSHEY_PLAIN


def _text(img: np.ndarray, text: str, x: int, y: int, color: tuple[int, int, int] = (235, 235, 235)) -> None:
    cv2.putText(img, text, (x, y), FONT, 0.8, color, 1, cv2.LINE_AA)


def _caption(ops: list[str]) -> list[str]:
    """At most two lines of about 20 characters for a 128 px cell."""
    lines, current = [], ""
    for op in ops:
        candidate = f"{current}, {op}" if current else op
        if len(candidate) > 20 and current:
            lines.append(current)
            current = op
        else:
            current = candidate
    lines.append(current)
    return lines[:2]


def sheet_size(rows: int, augmented: int) -> tuple[int, int]:
    """(width, height) of a sheet in pixels."""
    return (augmented + 1) * CELL, rows * (HEADER_H + CELL + CAPTION_H)


def render_sheet(crops: list[tuple[np.ndarray, str]], augmented: int = 6, seed: int = 0) -> np.ndarray:
    """`crops`: (128x128 BGR crop, row title). A BGR sheet of sheet_size(len(crops), augmented)."""
    width, height = sheet_size(len(crops), augmented)
    sheet = np.full((height, width, 3), 32, np.uint8)
    aug = Augmenter(seed)
    row_h = HEADER_H + CELL + CAPTION_H
    for r, (crop, title) in enumerate(crops):
        if crop.shape != (CELL, CELL, 3):
            crop = cv2.resize(crop, (CELL, CELL))
        top = r * row_h
        _text(sheet, title[:110], 4, top + 12, (120, 220, 255))
        cells = [(crop, ["original"])] + [aug(crop) for _ in range(augmented)]
        for c, (img, ops) in enumerate(cells):
            x = c * CELL
            sheet[top + HEADER_H: top + HEADER_H + CELL, x: x + CELL] = img
            for i, line in enumerate(_caption(ops)):
                _text(sheet, line, x + 2, top + HEADER_H + CELL + 12 + 13 * i)
    return sheet


def pick_rows(rows: list[SampleRow], n: int, seed: int = 0) -> list[SampleRow]:
    """Persons and negatives alternating, drawn across sources (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    persons = [r for r in rows if r.label == "person"]
    negatives = [r for r in rows if r.label == "negative"]
    rng.shuffle(persons)  # type: ignore[arg-type]
    rng.shuffle(negatives)  # type: ignore[arg-type]
    out: list[SampleRow] = []
    while len(out) < n and (persons or negatives):
        for pool in (persons, negatives):
            if pool and len(out) < n:
                out.append(pool.pop())
    return out


def write_dataset_sheet(out: Path, rows: int = 12, augmented: int = 6, seed: int = 0) -> Path:
    """contact_sheet.png in the dataset folder `out` (only there)."""
    out = Path(out)
    picked = pick_rows(read_samples(out / SAMPLES_FILE), rows, seed)
    crops = []
    for row in picked:
        img = cv2.imread(str(out / row.crop), cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"{out / row.crop}: crop missing")
        when = "still" if row.t is None else f"t={row.t:.1f}s"
        crops.append((img, f"{row.label} ({row.label_source}, w {row.weight:g}) {row.item} {when}"))
    path = out / SHEET_FILE
    cv2.imwrite(str(path), render_sheet(crops, augmented, seed))
    return path
