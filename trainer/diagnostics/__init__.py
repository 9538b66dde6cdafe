"""``trainer doctor``: is this machine ready for TrainDesk, and a bundle for a bug report.

Qt-free and torch-free (an import-linter contract), so the desktop app can offer "Copy
diagnostics" (``run_checks(runs_dir).table()``) and "Save diagnostics bundle"
(``build_bundle(path, runs_dir)``) from its Help menu. PySide6 is never imported: its version
comes from the package metadata. torch is probed in a child Python
(:func:`~trainer.diagnostics.probes.probe_torch`): import-linter counts an import inside a
function like one at the top, metadata alone cannot say whether CUDA works, and a broken
CUDA install then cannot crash or hang the caller. Run the checks off the GUI thread: the
torch probe takes seconds.
"""

from trainer.diagnostics.bundle import build_bundle
from trainer.diagnostics.checks import Check, Probes, Report, run_checks
from trainer.diagnostics.scrub import safe_environment, scrub

__all__ = ["Check", "Probes", "Report", "build_bundle", "run_checks", "safe_environment", "scrub"]
