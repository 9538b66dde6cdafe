"""House rules for the code itself: module sizes, names, where settings are read."""

from __future__ import annotations

import ast
import importlib.metadata
import re
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


#: The one reader of the environment, and the W&B stand-in (it reads the WANDB_* variables as
#: wandb does, in a user's script, and imports nothing of TrainDesk).
READS_THE_ENVIRONMENT = {"trainer/settings.py", "trainer/capture/shim/wandb/__init__.py"}


def _is_os(node: ast.AST, attr: str) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == attr
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _reads(parent: ast.AST | None) -> bool:
    """Whether ``os.environ`` under ``parent`` is read (get, a [...] value, `in`)."""
    if isinstance(parent, ast.Attribute):
        return parent.attr in ("get", "items", "keys", "values")
    if isinstance(parent, ast.Subscript):
        return isinstance(parent.ctx, ast.Load)
    if isinstance(parent, ast.Compare):
        return any(isinstance(op, ast.In | ast.NotIn) for op in parent.ops)
    return False


def _environment_reads(tree: ast.AST) -> list[int]:
    """Lines that read os.environ (get, [...] as a value, `in`) or call os.getenv. Writing a
    variable, or copying the environment for a child, is not reading a setting."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    lines = [getattr(n, "lineno", 0) for n in ast.walk(tree) if _is_os(n, "getenv")]
    lines += [getattr(n, "lineno", 0) for n in ast.walk(tree)
              if _is_os(n, "environ") and _reads(parents.get(n))]  # fmt: skip
    return sorted(lines)


def test_only_the_settings_module_reads_the_environment() -> None:
    found = []
    for path in modules():
        rel = path.relative_to(ROOT).as_posix()
        if rel in READS_THE_ENVIRONMENT:
            continue
        for line in _environment_reads(ast.parse(path.read_text(encoding="utf-8"))):
            found.append(f"{rel}:{line}")
    assert not found, (
        "read environment variables through trainer.settings (add a Setting there: name, "
        f"default, meaning), not os.environ: {found}"
    )


def test_the_check_for_environment_reads_finds_them() -> None:
    code = (
        "import os\n"
        "a = os.environ.get('X')\n"
        "b = os.environ['Y']\n"
        "c = 'Z' in os.environ\n"
        "d = os.getenv('W')\n"
        "os.environ['V'] = '1'\n"
        "e = dict(os.environ)\n"
    )
    assert _environment_reads(ast.parse(code)) == [2, 3, 4, 5]


def test_the_settings_page_lists_every_setting() -> None:
    from trainer import settings

    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert settings.markdown_table() in page, (
        "docs/settings.md is out of date: paste trainer.settings.markdown_table() into it"
    )


# ------------------------------------------------------------- docs/architecture.md, checked
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def _section(title: str) -> str:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_module_map_names_every_module_and_only_those() -> None:
    block = _section("Module map").split("```")[1]
    named = set(re.findall(r"(?<![\w/.])([A-Za-z_]\w*(?:\.py|/))(?!\w)", block))
    missing = []
    for pkg in PACKAGES:
        for entry in sorted((ROOT / pkg).iterdir()):
            is_package = entry.is_dir() and (entry / "__init__.py").exists()
            if is_package and f"{entry.name}/" not in named:
                missing.append(f"{pkg}/{entry.name}/")
            if entry.suffix == ".py" and entry.name != "__main__.py" and entry.name not in named:
                missing.append(f"{pkg}/{entry.name}")
    assert not missing, f"docs/architecture.md's module map does not name: {missing}"
    others = {"tests/", "bench/", "packaging/", "docs/", "resources/", "logs/"}
    gone = [n for n in named - others if not any((ROOT / p / n.rstrip("/")).exists()
                                                   for p in (*PACKAGES, "."))]  # fmt: skip
    assert not gone, f"docs/architecture.md's module map names what does not exist: {gone}"


def _string_constants(tree: ast.Module) -> dict[str, str]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
    return found


def _thread_names() -> dict[str, str]:
    """Each thread (or pool prefix) the code names -> where: name=, thread_name_prefix= of
    Thread and ThreadPoolExecutor calls, and BackgroundIO's default name."""
    found: dict[str, str] = {}
    for path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _string_constants(tree)
        where = path.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            values: list[ast.expr] = []
            if isinstance(node, ast.Call):
                called = (
                    node.func.attr
                    if isinstance(node.func, ast.Attribute)
                    else getattr(node.func, "id", "")
                )
                if called in ("Thread", "ThreadPoolExecutor", "BackgroundIO"):
                    values = [k.value for k in node.keywords
                              if k.arg in ("name", "thread_name_prefix")]  # fmt: skip
            elif isinstance(node, ast.FunctionDef) and where == "desktop_app/background.py":
                a = node.args
                pairs = [*zip(a.args[len(a.args) - len(a.defaults) :], a.defaults, strict=True),
                         *zip(a.kwonlyargs, a.kw_defaults, strict=True)]  # fmt: skip
                values = [d for arg, d in pairs if arg.arg == "name" and d is not None]
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found[re.escape(value.value)] = where
                elif isinstance(value, ast.Name) and value.id in constants:
                    found[re.escape(constants[value.id])] = where
                elif isinstance(value, ast.JoinedStr):
                    parts = [re.escape(str(v.value)) if isinstance(v, ast.Constant) else ".+"
                             for v in value.values]  # fmt: skip
                    found["".join(parts)] = where
    return found


def test_the_threads_table_names_every_thread_the_code_starts() -> None:
    names = _thread_names()
    assert len(names) >= 8, names  # the check itself finds them
    shown = re.findall(r"`([^`]+)`", _section("Threads and processes"))
    missing = [f"{pattern} ({where})" for pattern, where in names.items()
               if not any(re.fullmatch(f"{pattern}(_\\d+)?", s) for s in shown)]  # fmt: skip
    assert not missing, f"docs/architecture.md's threads table does not list: {missing}"


def test_the_layers_picture_is_the_layers_contract() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    picture = _section("Import contracts").split("```text\n")[1].split("```")[0]
    assert picture.splitlines() == contract["layers"], (
        "docs/architecture.md's layers picture differs from pyproject.toml's layers contract"
    )
