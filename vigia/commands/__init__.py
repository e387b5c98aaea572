"""Subcommands of `vigia`; each module has register(subparsers)."""
