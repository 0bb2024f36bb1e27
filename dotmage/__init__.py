"""dotMage: an end-to-end-encrypted manager for .env files."""

__version__ = "0.1.0"
