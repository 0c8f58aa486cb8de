"""Tutorials. A package only so that pytest imports ``notebooks/conftest.py`` as
``notebooks.conftest``: a second top-level ``conftest`` module would shadow
``tests/conftest.py`` for the tests' ``from conftest import ...``."""
