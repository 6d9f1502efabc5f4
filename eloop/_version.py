"""eloop's version, in one place: pyproject.toml reads it (setuptools'
``attr:``, evaluated statically, so building needs no compiled module) and
``eloop.__version__`` re-exports it."""
__version__ = "0.1.0"
