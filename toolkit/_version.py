"""The toolkit's version (one place: the package and the doctor read it here)."""

__version__ = "0.1.0"
