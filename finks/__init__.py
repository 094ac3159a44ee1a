"""finks: build and prove the Finks data platform session by session."""

__version__ = "0.1.0"
