"""Everything that runs on the gateway: capture, motion gate, detection, filters, tracking, candidates."""
