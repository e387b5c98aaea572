"""Cloud side."""
