"""Split wine.csv into wine_train.csv / wine_eval.csv: a deterministic, stratified 80/20 split.

Within each class, every fifth row (the 5th, 10th, ...) goes to the evaluation file, the
rest to the training file; row order is kept. Run from anywhere:
``python examples/data/split_wine.py``.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABEL = "target"
EVAL_EVERY = 5


def main() -> None:
    """Write the two split files beside wine.csv and print their sizes."""
    with open(HERE / "wine.csv", newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    label = header.index(LABEL)
    seen: dict[str, int] = defaultdict(int)
    train, evaluation = [], []
    for row in rows:
        seen[row[label]] += 1
        (evaluation if seen[row[label]] % EVAL_EVERY == 0 else train).append(row)
    for name, part in (("wine_train.csv", train), ("wine_eval.csv", evaluation)):
        with open(HERE / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(part)
        print(f"{name}: {len(part)} rows")


if __name__ == "__main__":
    main()
