"""``python -m benchmarks [--quick] [--repeats N] [--json PATH]``: see `benchmarks.cli`."""

import sys

from benchmarks.cli import main

sys.exit(main())
