"""Evaluation on labelled sets in the shared-datasets format: metrics, baseline, report, plots."""
