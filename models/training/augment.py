"""Realistic augmentation of 128x128 crops: the original plan's ops plus what camera footage does to pictures.

Every op has declared bounds (`AugmentBounds`, one range per parameter) chosen so that an augmented crop still
looks like a frame some camera could send: small tilts, not upside-down people; compression and blur of the
strength real clips show; IR-like grey with the bloom of bright spots; low light as a gamma darkening with
the sensor noise that comes with it. Output is always uint8 BGR of the input's shape.

`Augmenter(seed)` draws 1-3 distinct ops per sample, deterministic for its seed; `augment(crop, rng)` does
the same with a caller's generator and returns the image and the ops applied (named with their parameters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

Range = tuple[float, float]


@dataclass(frozen=True)
class AugmentBounds:
    rotate_deg: Range = (-8.0, 8.0)
    zoom: Range = (0.85, 1.15)
    brightness: Range = (-0.25, 0.25)  # fraction of the mean level added
    contrast: Range = (0.75, 1.25)  # gain around the mean
    noise_sigma: Range = (2.0, 6.0)  # grey levels
    ir_contrast: Range = (1.05, 1.2)
    ir_bloom_threshold: Range = (200.0, 235.0)  # grey level above which spots bloom
    ir_bloom_sigma: Range = (1.5, 3.0)
    blur_sigma: Range = (0.5, 1.2)
    motion_blur_px: tuple[int, int] = (3, 5)
    jpeg_quality: tuple[int, int] = (30, 90)
    low_light_gamma: Range = (1.6, 2.4)
    low_light_noise_sigma: Range = (2.0, 5.0)
    ops_per_sample: tuple[int, int] = (1, 3)


DEFAULT_BOUNDS = AugmentBounds()


def _u(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1]))


def _to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _warp(img: np.ndarray, angle: float, scale: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
    # Mirrored edges: black corners would be a cue no camera frame has, and replicated ones smear visibly.
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def rotate(img: np.ndarray, rng: np.random.Generator, b: AugmentBounds = DEFAULT_BOUNDS) -> tuple[np.ndarray, str]:
    angle = _u(rng, b.rotate_deg)
    return _warp(img, angle, 1.0), f"rot {angle:+.1f}deg"


def flip(img: np.ndarray, rng: np.random.Generator, b: AugmentBounds = DEFAULT_BOUNDS) -> tuple[np.ndarray, str]:
    return np.ascontiguousarray(img[:, ::-1]), "flip"


def zoom(img: np.ndarray, rng: np.random.Generator, b: AugmentBounds = DEFAULT_BOUNDS) -> tuple[np.ndarray, str]:
    scale = _u(rng, b.zoom)
    return _warp(img, 0.0, scale), f"zoom x{scale:.2f}"


def brightness_contrast(img: np.ndarray, rng: np.random.Generator,
                        b: AugmentBounds = DEFAULT_BOUNDS) -> tuple[np.ndarray, str]:
    shift, gain = _u(rng, b.brightness), _u(rng, b.contrast)
    f = img.astype(np.float32)
    mean = float(f.mean())
    out = (f - mean) * gain + mean * (1.0 + shift)
    return _to_u8(out), f"bri{shift:+.0%} con{gain:.2f}"


def noise(img: np.ndarray, rng: np.random.Generator, b: AugmentBounds = DEFAULT_BOUNDS) -> tuple[np.ndarray, str]:
    sigma = _u(rng, b.noise_sigma)
    return _to_u8(img.astype(np.float32) + rng.normal(0.0, sigma, img.shape)), f"noise s{sigma:.1f}"


def ir_gray(img: np.ndarray, rng: np.random.Generator, b: AugmentBounds = DEFAULT_BOUNDS) -> tuple[np.ndarray, str]:
    """Night infrared look: grey, a slight contrast lift, bright spots (lamps, reflective parts) blooming."""
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gain = _u(rng, b.ir_contrast)
    mean = float(gray.mean())
    lifted = np.clip((gray - mean) * gain + mean, 0, 255)
    threshold, sigma = _u(rng, b.ir_bloom_threshold), _u(rng, b.ir_bloom_sigma)
    bright = np.where(lifted > threshold, lifted, 0.0).astype(np.float32)
    bloom = cv2.GaussianBlur(bright, (0, 0), sigma)
    out = np.maximum(lifted, bloom)
    return cv2.cvtColor(_to_u8(out), cv2.COLOR_GRAY2BGR), f"ir x{gain:.2f}"


def blur(img: np.ndarray, rng: np.random.Generator, b: AugmentBounds = DEFAULT_BOUNDS) -> tuple[np.ndarray, str]:
    """Out of focus (gaussian) or a short motion streak, half the time each."""
    if rng.random() < 0.5:
        sigma = _u(rng, b.blur_sigma)
        return cv2.GaussianBlur(img, (0, 0), sigma), f"blur s{sigma:.1f}"
    length = int(rng.integers(b.motion_blur_px[0], b.motion_blur_px[1] + 1))
    angle = _u(rng, (0.0, 180.0))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    m = cv2.getRotationMatrix2D(((length - 1) / 2.0, (length - 1) / 2.0), angle, 1.0)
    kernel = cv2.warpAffine(kernel, m, (length, length))
    kernel /= max(float(kernel.sum()), 1e-6)
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REPLICATE), f"motion {length}px"


def jpeg(img: np.ndarray, rng: np.random.Generator, b: AugmentBounds = DEFAULT_BOUNDS) -> tuple[np.ndarray, str]:
    quality = int(rng.integers(b.jpeg_quality[0], b.jpeg_quality[1] + 1))
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # cannot happen for a uint8 BGR array; keep the crop rather than fail a training run
        return img.copy(), "jpeg failed"
    return cv2.imdecode(data, cv2.IMREAD_COLOR), f"jpeg q{quality}"


def low_light(img: np.ndarray, rng: np.random.Generator,
              b: AugmentBounds = DEFAULT_BOUNDS) -> tuple[np.ndarray, str]:
    gamma, sigma = _u(rng, b.low_light_gamma), _u(rng, b.low_light_noise_sigma)
    dark = 255.0 * (img.astype(np.float32) / 255.0) ** gamma
    return _to_u8(dark + rng.normal(0.0, sigma, img.shape)), f"dark g{gamma:.1f}"


Op = Callable[[np.ndarray, np.random.Generator, AugmentBounds], tuple[np.ndarray, str]]
OPS: dict[str, Op] = {
    "rotate": rotate, "flip": flip, "zoom": zoom, "brightness_contrast": brightness_contrast, "noise": noise,
    "ir_gray": ir_gray, "blur": blur, "jpeg": jpeg, "low_light": low_light,
}
# Applied in this order whatever the draw: geometry first, then the scene's light, then the camera's sensor
# and encoder -- the order a real frame goes through.
PIPELINE_ORDER = ("rotate", "zoom", "flip", "brightness_contrast", "low_light", "ir_gray", "blur", "noise", "jpeg")


def _check(crop: np.ndarray) -> None:
    if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
        raise ValueError(f"expected a uint8 BGR crop, got {crop.dtype} {crop.shape}")


def augment(crop: np.ndarray, rng: np.random.Generator, bounds: AugmentBounds = DEFAULT_BOUNDS,
            ops: tuple[str, ...] = tuple(OPS)) -> tuple[np.ndarray, list[str]]:
    """1-3 distinct ops drawn from `ops`, applied in camera order; returns the image and the ops' names."""
    _check(crop)
    lo, hi = bounds.ops_per_sample
    n = int(rng.integers(lo, min(hi, len(ops)) + 1))
    chosen = set(rng.choice(len(ops), size=n, replace=False).tolist())
    names = [ops[i] for i in sorted(chosen)]
    if "ir_gray" in names and "low_light" in names:  # IR footage is lit by IR: not both darkening looks at once
        names.remove("low_light")
    image, applied = crop, []
    for name in sorted(names, key=PIPELINE_ORDER.index):
        image, label = OPS[name](image, rng, bounds)
        applied.append(label)
    return image, applied


@dataclass
class Augmenter:
    """Draws augmentations from its own seeded generator: the same seed, the same sequence of outputs."""

    seed: int = 0
    bounds: AugmentBounds = field(default_factory=AugmentBounds)
    ops: tuple[str, ...] = tuple(OPS)

    def __post_init__(self) -> None:
        unknown = [o for o in self.ops if o not in OPS]
        if unknown:
            raise ValueError(f"unknown augmentation ops {unknown}; known: {', '.join(OPS)}")
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, crop: np.ndarray) -> tuple[np.ndarray, list[str]]:
        return augment(crop, self.rng, self.bounds, self.ops)
