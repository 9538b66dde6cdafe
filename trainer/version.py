"""The version of TrainDesk (the trainer and the app), kept here only.

pyproject.toml reads it at build time; ``trainer --version``, ``traindesk --version`` and each
journal's ``created_by`` print it. A module of its own so that the app can import it without
importing the ``trainer`` package (whose lazy ``trainer.init`` import-linter counts as torch).
"""

__version__ = "0.1.0"
