"""Feedback on events (person / not-person / unsure) and what it teaches: the camera's false-positive memory,
in the cloud and, through the named shadow, on the gateway."""

from cloud.feedback.model import LABELS, FeedbackEntry, Label, UnknownEvent, parse_label
from cloud.feedback.recording import LearningFailed, record_feedback

__all__ = ["LABELS", "FeedbackEntry", "Label", "LearningFailed", "UnknownEvent", "parse_label", "record_feedback"]
