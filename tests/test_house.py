"""House rules for the code itself: module sizes, names, where settings are read."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("trainer", "desktop_app")
#: A module longer than this says at its top why it is one module.
MAX_LINES = 400
SIZE_REASON = "Why over 400 lines:"
#: Well-known packages a module name must not shadow, besides the standard library and what
#: is installed here (a module named like one breaks `import` for a script run beside it).
WELL_KNOWN = {"structlog", "requests", "yaml", "attr", "attrs", "click", "rich", "tqdm",
              "torch", "numpy", "pandas", "pytest", "six", "wandb"}  # fmt: skip
#: On purpose: `trainer run --capture wandb` puts this stand-in first on a script's path.
SHADOWS_ON_PURPOSE = {"trainer/capture/shim/wandb"}


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_a_long_module_says_why_at_its_top() -> None:
    missing = []
    for path in modules():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if SIZE_REASON not in doc:
            missing.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert not missing, (
        f"modules over {MAX_LINES} lines without '{SIZE_REASON} ...' in their docstring "
        f"(split them, or say why they are one module): {missing}"
    )


def _installed_names() -> set[str]:
    names: set[str] = set()
    for dist in importlib.metadata.distributions():
        top = dist.read_text("top_level.txt") or ""
        names.update(n.strip() for n in top.split() if n.strip())
    return names


def test_no_module_shadows_a_well_known_package() -> None:
    ours = set(PACKAGES)
    taken = (set(sys.stdlib_module_names) | WELL_KNOWN | _installed_names()) - ours
    shadowing = []
    for path in modules():
        module = path.parent if path.name == "__init__.py" else path.with_suffix("")
        rel = module.relative_to(ROOT).as_posix()
        if module.name in taken and rel not in SHADOWS_ON_PURPOSE:
            shadowing.append(rel)
    assert not shadowing, f"rename these: they shadow well-known modules: {shadowing}"
