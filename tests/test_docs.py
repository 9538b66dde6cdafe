"""The documentation stays in step with the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, trainer_env
from trainer.cli.docgen import render


def test_cli_reference_matches_the_parser() -> None:
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == render(), "docs/cli.md is stale: python -m trainer.cli.docgen > docs/cli.md"


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("```python\n", readme.index("## Your own training code")) + 10
    code = readme[start : readme.index("```", start)]
    script = tmp_path / "my_train.py"
    script.write_text(code.replace('max_steps": 500', 'max_steps": 40'))
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300,
        env=trainer_env(), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    runs = list((tmp_path / "runs").iterdir()) if (tmp_path / "runs").exists() else []
    import os

    home = Path(os.environ["TRAINDESK_HOME"])
    runs += list(home.iterdir()) if home.exists() else []
    assert runs, "the example made no run folder"
    from trainer.runs import summarize

    assert summarize(runs[0]).status == "finished"
