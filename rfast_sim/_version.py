"""The package version (a leaf: the sweep manifest and the CLI read it)."""

__version__ = "0.2.0"
