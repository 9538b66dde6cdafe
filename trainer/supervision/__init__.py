"""Supervised runs, Qt-free and torch-free: one lifecycle and one restart policy for every driver.

The desktop app drives children with QProcess, ``trainer run --max-restarts N`` with
subprocess; both feed the same :class:`~trainer.supervision.core.Supervision` the facts they
see (started, the journal's heartbeat, the exit code) and carry out what it decides (kill a
hung child, restart after a delay, give up).
"""
