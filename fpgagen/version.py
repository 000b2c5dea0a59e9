"""The version of fpgagen (one place; the package facade and generated headers read it)."""

__version__ = "0.1.0"
