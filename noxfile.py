"""Nox sessions: lint, typecheck, TF-free core tests, the full suite, GPU, bench, demo, readme."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"  # nox.project.dependency_groups
nox.options.default_venv_backend = "uv|virtualenv"  # uv when available, else virtualenv
nox.options.reuse_venv = "yes"
# What CI runs (`nox` with no arguments); tests_gpu skips itself without a GPU.
nox.options.sessions = ["lint", "typecheck", "core", "tests", "tests_gpu"]

ROOT = Path(__file__).resolve().parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
# Every supported Python, from the pyproject classifiers ("3.10", "3.11"): the TF-free core
# session runs on each. The TensorFlow sessions run on the newest only, to keep CI short.
PYTHONS: list[str] = nox.project.python_versions(PYPROJECT)
PYTHON = PYTHONS[-1]
DEMO_CONFIG = "examples/wine/experiment.yaml"
README_SCRIPT = "docs/build_readme.py"


def _runs(command: str) -> bool:
    """Whether `command` is on PATH and `command -c pass` succeeds (a pyenv shim may not)."""
    exe = shutil.which(command)
    if exe is None:
        return False
    try:
        done = subprocess.run([exe, "-c", "pass"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _pyenv_output(pyenv: str, *args: str) -> str | None:
    """The stripped stdout of `pyenv ARGS`, or None when it fails."""
    try:
        done = subprocess.run([pyenv, *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def pyenv_expose(versions: list[str]) -> list[str]:
    """Let nox find each X.Y in `versions` that pyenv installed but has not activated.

    pyenv's `pythonX.Y` shim fails ("command not found") unless X.Y is an active pyenv
    version, so nox would not find it. Appending the newest installed X.Y.N to
    PYENV_VERSION, after the active versions (which keep precedence), is pyenv's own way to
    make several versions available at once. No-op without pyenv or when all are found.

    Returns:
        The pyenv versions added (empty when nothing changed).
    """
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return []
    missing = [v for v in versions if not _runs(f"python{v}")]
    if not missing:
        return []
    active = _pyenv_output(pyenv, "version-name")
    installed = _pyenv_output(pyenv, "versions", "--bare")
    if not active or installed is None:
        return []
    added = []
    for version in missing:
        pattern = re.compile(rf"{re.escape(version)}\.(\d+)")
        patches = [m for line in installed.split() if (m := pattern.fullmatch(line))]
        if patches:
            added.append(max(patches, key=lambda m: int(m.group(1))).group(0))
    if added:
        os.environ["PYENV_VERSION"] = ":".join([*active.split(":"), *added])
    return added


pyenv_expose(PYTHONS)


def group(name: str) -> tuple[str, ...]:
    """The requirements of one PEP 735 dependency group in pyproject.toml."""
    return nox.project.dependency_groups(PYPROJECT, name)


def install(session: nox.Session, extras: str = "", *groups: str) -> None:
    """Install this project (with `extras`, e.g. "tf,report") and dependency groups."""
    # setuptools builds in ./build and would package modules deleted since the last build.
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    target = f".[{extras}]" if extras else "."
    session.install(target, *(req for name in groups for req in group(name)))


def run_pytest(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    """Run pytest without the cache provider, forwarding `nox -s ... -- ARGS`."""
    session.run("pytest", "-p", "no:cacheprovider", *args, *session.posargs, env=env)


def gpu_visible() -> bool:
    """Whether `nvidia-smi -L` exists, succeeds and lists a GPU (no Python deps needed)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        done = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and "GPU" in done.stdout


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff lint and format check; README.md is what docs/readme/ generates."""
    session.install(*group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("python", README_SCRIPT, "--check")  # README.md matches docs/readme/


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on core, shell, benchmarks, docs/build_readme.py, then noxfile.py; without TensorFlow."""
    install(session, "", "typecheck")  # no TensorFlow: its imports are Any to mypy
    session.run("mypy")
    session.run("mypy", "noxfile.py")  # apart: a venv without nox can still run plain `mypy`


@nox.session(python=PYTHONS)
def core(session: nox.Session) -> None:
    """tests/core on every supported Python, without TensorFlow: proves the core needs no TF."""
    install(session, "", "test")
    run_pytest(session, "tests/core")
    session.run(
        "python",
        "-c",
        "import importlib.util; "
        "assert importlib.util.find_spec('tensorflow') is None, 'tensorflow is installed'",
    )


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite against tensorflow-cpu, then a quick benchmark if there is one."""
    install(session, "tf,report,tune", "test", "test-tf")
    run_pytest(session)
    if (ROOT / "benchmarks" / "__main__.py").is_file():
        session.run("python", "-m", "benchmarks", "--quick")


@nox.session(python=PYTHON)
def tests_gpu(session: nox.Session) -> None:
    """The whole suite against tensorflow[and-cuda]; gpu tests must find a GPU."""
    if not gpu_visible():
        session.skip("no GPU visible (nvidia-smi not found or failed); GPU session skipped")
    install(session, "gpu,report,tune", "test", "test-tf")
    run_pytest(session, "-m", "gpu or not gpu", env={"TFX_REQUIRE_GPU": "1"})


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Side-by-side benchmarks vs tf.estimator (full run, ~45 min on 2 idle cores).

    `nox -s bench -- --quick` is the < 60 s smoke run; other options pass through, e.g.
    `-- --repeats 9 --json bench-results.json --only W1,W3 --strict`.
    """
    if not (ROOT / "benchmarks" / "__main__.py").is_file():
        session.error("benchmarks/__main__.py not found: nothing to benchmark")
    install(session, "tf")  # numpy comes with TensorFlow; benchmarks/ runs from the checkout
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Train the wine example and plot it: `nox -s demo [-- --set train_steps=50 ...]`.

    Arguments after `--` go to `tfexperiment run` (e.g. `--set KEY=VALUE` overrides for a
    quick run). Each demo replaces runs/wine: the previous run there is deleted first, so
    it trains from scratch; its plot goes to runs/wine/report.png.
    """
    if not (ROOT / DEMO_CONFIG).is_file():
        session.error(f"demo config {DEMO_CONFIG} not found (the wine example is missing)")
    install(session, "tf,report")
    shutil.rmtree(ROOT / "runs" / "wine", ignore_errors=True)  # a fresh run, not a resumed one
    run = ["run", "--config", DEMO_CONFIG, "--output-dir", "runs/wine"]
    session.run("tfexperiment", *run, *session.posargs)
    session.run("tfexperiment", "report", "runs/wine")


@nox.session(python=False)
def readme(session: nox.Session) -> None:
    """Regenerate README.md from docs/readme/*.md (`nox -s readme -- --check` only checks)."""
    session.run(sys.executable, README_SCRIPT, *session.posargs)


@nox.session(python=PYTHON, default=False)
def demo_tune(session: nox.Session) -> None:
    """A 10-trial sweep of the wine example: `nox -s demo_tune [-- --jobs 2 ...]`.

    Arguments after `--` go to `tfexperiment tune`; the sweep goes to runs/wine-tune
    (replaced): trials in runs/wine-tune/trial-<n>/, the plot in runs/wine-tune/tune.png.
    """
    config = "examples/wine/tune.yaml"
    if not (ROOT / config).is_file():
        session.error(f"sweep config {config} not found (the wine example is missing)")
    install(session, "tf,report,tune")
    shutil.rmtree(ROOT / "runs" / "wine-tune", ignore_errors=True)  # a fresh study
    tune = ["tune", "--config", config, "--trials", "10", "--output-dir", "runs/wine-tune"]
    session.run("tfexperiment", *tune, *session.posargs)
