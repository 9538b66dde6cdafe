"""``python runner.py NAME``: run one scenario's W&B script (whichever ``wandb`` is found)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenarios import SCENARIOS

code, _env = SCENARIOS[sys.argv[1]]
exec(compile(code, f"<scenario {sys.argv[1]}>", "exec"), {"__name__": "__main__"})
