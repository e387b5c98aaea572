"""The cloud verifier: more frames, tiles and a second architecture decide confirmed / rejected / uncertain."""

from cloud.verifier.frames import ClipReadError
from cloud.verifier.settings import VerifierSettings
from cloud.verifier.verifier import Verifier

__all__ = ["ClipReadError", "Verifier", "VerifierSettings"]
