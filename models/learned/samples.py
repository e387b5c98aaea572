"""What the detectors fired on, as the learned stage sees it: one region per hypothesis of the verifier.

`features` are the numeric, detector-derived features of the hypothesis (scores per model, scales, box
geometry relative to the frame), named; the head records which names it was trained on, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.geometry import Xyxy


@dataclass(frozen=True, slots=True)
class MinedRegion:
    box: Xyxy  # frame pixels
    features: dict[str, float] = field(default_factory=dict)


# Given one BGR frame, the regions the detector ensemble proposes (every scale the verifier looks at).
Miner = Callable[[np.ndarray], list[MinedRegion]]
