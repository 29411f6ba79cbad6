"""The core stays pure: no IO, clock, logging or TensorFlow, checked on its source and at import."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core"
CORE_FILES = sorted(CORE.glob("*.py"))

BANNED_MODULES = frozenset(
    {
        "time",
        "os",
        "logging",
        "random",
        "tensorflow",
        "tensorflow_estimator",
        "tenacity",
        "subprocess",
        "socket",
        "threading",
        "multiprocessing",
        "asyncio",
        "pathlib",
        "shutil",
        "glob",
        "io",
        "sys",
        "tempfile",
        "datetime",
        "importlib",
        "builtins",
    }
)
BANNED_CALLS = frozenset({"open", "print", "input", "breakpoint", "exec", "eval", "__import__"})

# Every concern the core must cover (issue 2); a missing module is a failure too.
EXPECTED_MODULES = frozenset(
    {
        "errors",
        "_validate",
        "checkpoints",
        "train_eval",
        "iteration",
        "workers",
        "retry",
        "tf_config",
        "schedule",
        "completion",
        "continuous_eval",
        "config",
        "config_parse",
        "canned",
    }
)


def violations(source: str, filename: str) -> list[str]:
    """Every banned import or call in ``source``, as ``file:line: what``."""
    tree = ast.parse(source, filename=filename)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [] if node.level else [node.module or ""]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in BANNED_CALLS:
                found.append(f"{filename}:{node.lineno}: calls {node.func.id}()")
            continue
        else:
            continue
        for name in names:
            if name.split(".")[0] in BANNED_MODULES:
                found.append(f"{filename}:{node.lineno}: imports {name}")
    return found


def test_core_has_every_module() -> None:
    """The core consists of one module per concern, all of which the purity checks cover."""
    stems = {path.stem for path in CORE_FILES}
    assert stems >= EXPECTED_MODULES, f"missing: {sorted(EXPECTED_MODULES - stems)}"


@pytest.mark.parametrize("path", CORE_FILES, ids=[path.name for path in CORE_FILES])
def test_core_module_has_no_banned_import_or_call(path: Path) -> None:
    """No core module imports IO/clock/logging/TF/tenacity modules or calls open/print."""
    found = violations(path.read_text(encoding="utf-8"), f"core/{path.name}")
    assert not found, "impure core:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os\n", "x.py:1: imports os"),
        ("import os.path as p\n", "x.py:1: imports os.path"),
        ("\nfrom time import monotonic\n", "x.py:2: imports time"),
        ("import json, logging\n", "x.py:1: imports logging"),
        ("import tensorflow.compat.v1 as tf\n", "x.py:1: imports tensorflow.compat.v1"),
        ("from tenacity import retry\n", "x.py:1: imports tenacity"),
        ("def f():\n    import random\n", "x.py:2: imports random"),
        ("x = open('f')\n", "x.py:1: calls open()"),
        ("print('hi')\n", "x.py:1: calls print()"),
        ("m = __import__('os')\n", "x.py:1: calls __import__()"),
    ],
)
def test_checker_reports_violations_with_file_and_line(source: str, expected: str) -> None:
    """The purity checker itself catches each kind of violation and reports file:line."""
    assert expected in violations(source, "x.py")


@pytest.mark.parametrize(
    "source",
    [
        "import json\nimport enum\nimport attrs\n",
        "from core.errors import ConfigError\n",
        "from . import errors\n",
        "from collections.abc import Mapping\n",
        "import timeit_like_name\n",
        "obj.open('x')\n",
        "import math\nx = math.log(2)\n",
    ],
)
def test_checker_allows_pure_code(source: str) -> None:
    """Pure imports, relative imports, look-alike names and method calls are not flagged."""
    assert violations(source, "x.py") == []


_IMPORT_PROBE = r"""
import importlib, json, pkgutil, sys

class _Blocker:
    # Make TensorFlow and tenacity unimportable, as in the TF-free nox session.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_estimator", "tenacity"):
            raise ImportError(f"blocked in the purity probe: {name}")
        return None

sys.meta_path.insert(0, _Blocker())
sys.path.insert(0, sys.argv[1])
import core
names = sorted(m.name for m in pkgutil.walk_packages(core.__path__, "core."))
for name in names:
    importlib.import_module(name)
heavy = sorted(
    m for m in sys.modules
    if m.split(".")[0] in ("tensorflow", "tensorflow_estimator", "tenacity")
)
print(json.dumps({"modules": names, "heavy": heavy, "file": core.__file__}))
"""


def test_import_core_loads_no_tensorflow_and_imports_every_submodule() -> None:
    """`import core` plus every submodule succeeds with TF and tenacity unimportable."""
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(report["file"]).resolve() == CORE / "__init__.py"
    assert report["heavy"] == []
    imported = {name.removeprefix("core.") for name in report["modules"]}
    assert imported == {path.stem for path in CORE_FILES if path.stem != "__init__"}
