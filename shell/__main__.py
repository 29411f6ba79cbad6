"""``python -m shell``: the same command line as ``tfexperiment``."""

from shell.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
