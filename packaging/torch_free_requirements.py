"""Print what a torch-free test environment needs (``make test-py3.12``, ``test-py3.13``).

The project's dependencies without torch, and the test tools the torch-free part of the suite
uses, read from pyproject.toml so that the lists are kept in one place. pip installs them
under packaging/no-torch.txt, a constraint that no torch satisfies: nothing can pull it in.
"""

import re
import tomllib
from pathlib import Path

TOOLS = {"pytest", "pytest-qt", "pytest-timeout", "pytest-xdist"}


def name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower()


def main() -> None:
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted = [r for r in project["dependencies"] if name(r) != "torch"]
    wanted += [r for r in project["optional-dependencies"]["test"] if name(r) in TOOLS]
    print("\n".join(wanted))


if __name__ == "__main__":
    main()
