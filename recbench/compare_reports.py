"""Compare a run's rendered reports with the committed ones, cell by cell.

    python -m recbench.compare_reports COMMITTED_ROOT RUN_ROOT results/table2.csv ...

.ci/run renders the default run in a clean clone and calls this against the committed files:
it prints every differing cell (file, row, column, committed and run values) and exits 1, or
prints one line per file and exits 0. It writes nothing.

What "equal" means:

- CPU runs repeat exactly with the same seeds, so a cell must be textually equal, except
- the cells of THREADED_MODELS, models trained by a library that runs its own threads
  (iALS: implicit's parallel conjugate-gradient ALS), whose last digits may differ between
  machines: their numbers must agree within TOLERANCE and their text otherwise be equal. Such a
  cell is any CSV row whose ``model`` is one of them, any markdown table cell in a row or column
  named after one, and TOLERATED_COLUMNS in every row (Holm's ``p_adjusted`` depends on every
  model of its family, iALS's included). p-values compare on -log10 p.
- EXCLUDED_COLUMNS (timings and machine facts) are not compared. The reports CI renders
  (table2.csv, table2.md, reproduction.md, table3.csv, table3.md) have none; the manifest and
  benchmarks.md, which hold them, are neither rendered nor compared there.

CSV rows are matched by KEYS (per file name), so a missing or extra row is named by its key;
markdown files are matched line by line, and table rows cell by cell.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import math
import re
import sys
from pathlib import Path

import pandas as pd

THREADED_MODELS = ("iALS",)
#: |run - committed| <= abs + rel x |committed|, on the reported scale (percent, or -log10 p)
TOLERANCE = {"abs": 0.05, "rel": 0.01}
TOLERATED_COLUMNS = ("p_adjusted",)
P_VALUE_COLUMNS = ("p_value", "p_adjusted", "p_equivalent")
EXCLUDED_COLUMNS: dict[str, tuple[str, ...]] = {}  # file pattern -> columns; none rendered yet
#: the columns that identify a CSV row, per file name pattern (others: the row's position)
KEYS = {
    "table2.csv": ("dataset", "protocol", "metric", "model"),
    "table[345].csv": ("dataset", "metric", "model"),
    "fig2_training_curves.csv": ("dataset", "epoch"),
    "fig[345]_*.csv": ("dataset", "label"),
}

_NUMBER = re.compile(r"[-+−]?\d+(?:[.,]\d+)*(?:\.\d+)?(?:e[-+]?\d+)?%?", re.IGNORECASE)


def _spec(table: dict, name: str, default):
    for pattern, value in table.items():
        if fnmatch.fnmatch(name, pattern):
            return value
    return default


def _float(text: str) -> float:
    return float(text.replace("−", "-").replace(",", "").rstrip("%"))


def _close(committed: float, run: float, p_value: bool = False) -> bool:
    if math.isnan(committed) or math.isnan(run):
        return math.isnan(committed) and math.isnan(run)
    if p_value:
        committed, run = (-math.log10(max(v, 1e-300)) for v in (committed, run))
    return abs(run - committed) <= TOLERANCE["abs"] + TOLERANCE["rel"] * abs(committed)


def _tolerant_text(committed: str, run: str) -> bool:
    """Equal text apart from numbers, which agree within TOLERANCE."""
    a, b = _NUMBER.findall(committed), _NUMBER.findall(run)
    if _NUMBER.sub("#", committed) != _NUMBER.sub("#", run) or len(a) != len(b):
        return False
    return all(_close(_float(x), _float(y)) for x, y in zip(a, b))


def compare_csv(committed: Path, run: Path, name: str) -> list[str]:
    """The differences between two CSV reports, one line each."""
    a, b = (pd.read_csv(p, dtype=str, keep_default_na=False) for p in (committed, run))
    excluded = set(_spec(EXCLUDED_COLUMNS, name, ()))
    out = [f"{name}: column {c!r} only in the {where}"
           for cols, other, where in ((a.columns, b.columns, "committed file"),
                                      (b.columns, a.columns, "run"))
           for c in cols if c not in other and c not in excluded]
    keys = [k for k in _spec(KEYS, name, ()) if k in a and k in b]
    if keys:
        for frame, label in ((a, "committed file"), (b, "run")):
            dup = frame[frame.duplicated(keys, keep=False)]
            if len(dup):
                out.append(f"{name}: {len(dup)} rows of the {label} share a key {keys}")
                return out
        a, b = a.set_index(keys), b.set_index(keys)
    for key in a.index.difference(b.index, sort=False):
        out.append(f"{name}: row {_key(key)} missing from the run")
    for key in b.index.difference(a.index, sort=False):
        out.append(f"{name}: row {_key(key)} only in the run (not committed)")
    columns = [c for c in a.columns if c in b.columns and c not in excluded]
    common = a.index.intersection(b.index, sort=False)
    left, right = a.loc[common, columns], b.loc[common, columns]
    differs = left.ne(right)
    model_in_key = "model" in keys
    for key, row in differs[differs.any(axis=1)].iterrows():
        model = (dict(zip(keys, key))["model"] if model_in_key
                 else a.loc[key, "model"] if "model" in a.columns else None)
        threaded = model in THREADED_MODELS
        for column in row.index[row]:
            x, y = left.loc[key, column], right.loc[key, column]
            if threaded or column in TOLERATED_COLUMNS:
                try:
                    if _close(float(x), float(y), column in P_VALUE_COLUMNS):
                        continue
                except ValueError:
                    pass
            out.append(f"{name}: row {_key(key)}, column {column!r}: committed {x!r}, "
                       f"run {y!r}")
    return out


def _key(key) -> str:
    return "(" + ", ".join(map(str, key)) + ")" if isinstance(key, tuple) else str(key)


def _cells(line: str) -> list[str] | None:
    if not line.startswith("|") or set(line) <= set("|-: "):
        return None
    return [c.strip() for c in line.strip().strip("|").split("|")]


def compare_markdown(committed: Path, run: Path, name: str) -> list[str]:
    """The differences between two markdown reports: changed table cells by row and column,
    other lines whole."""
    a, b = committed.read_text().splitlines(), run.read_text().splitlines()
    out, headers_a = [], _headers(a)
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        if op == "replace" and i2 - i1 == j2 - j1:
            for i, j in zip(range(i1, i2), range(j1, j2)):
                out += _compare_line(a[i], b[j], headers_a.get(i), name, i + 1)
            continue
        out += [f"{name}: line {i + 1} missing from the run: {a[i]!r}" for i in range(i1, i2)]
        out += [f"{name}: line {j + 1} of the run not committed: {b[j]!r}" for j in range(j1, j2)]
    return out


def _headers(lines: list[str]) -> dict[int, list[str]]:
    """Line index -> the header cells of the markdown table the line belongs to."""
    out, header = {}, None
    for i, line in enumerate(lines):
        cells = _cells(line)
        if cells is None and not line.startswith("|"):
            header = None
        elif cells is not None:
            if header is None:
                header = cells
            else:
                out[i] = header
    return out


def _compare_line(x: str, y: str, header: list[str] | None, name: str, number: int) -> list[str]:
    cx, cy = _cells(x), _cells(y)
    if header is None or cx is None or cy is None or len(cx) != len(cy) or len(cx) != len(header):
        return [f"{name}: line {number}: committed {x!r}, run {y!r}"]
    threaded_row = any(c in THREADED_MODELS for c in cx)
    label = ", ".join(c for c in cx[:3] if c and not _NUMBER.fullmatch(c.split(" ")[0]))
    out = []
    for column, u, v in zip(header, cx, cy):
        if u == v or ((threaded_row or column in THREADED_MODELS) and _tolerant_text(u, v)):
            continue
        out.append(f"{name}: line {number} ({label}), column {column!r}: committed {u!r}, "
                   f"run {v!r}")
    return out


def compare(committed_root: Path, run_root: Path, files: list[str]) -> list[str]:
    """Every difference between the committed and the run's copy of ``files`` (relative paths)."""
    out = []
    for f in files:
        a, b = Path(committed_root) / f, Path(run_root) / f
        missing = [label for p, label in ((a, "committed"), (b, "run")) if not p.is_file()]
        if missing:
            out.append(f"{f}: no {' and no '.join(missing)} file")
            continue
        name = Path(f).name
        out += (compare_csv(a, b, name) if name.endswith(".csv")
                else compare_markdown(a, b, name))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("committed", type=Path, help="root holding the committed files")
    parser.add_argument("run", type=Path, help="root holding the run's files")
    parser.add_argument("files", nargs="+", help="paths relative to both roots")
    args = parser.parse_args(argv)
    differences = compare(args.committed, args.run, args.files)
    for line in differences:
        print(line)
    if differences:
        print(f"{len(differences)} difference(s): the committed reports are not what this "
              "commit's code renders. Re-render them (the commands .ci/run runs) and commit "
              "them, or find what made the run differ.", file=sys.stderr)
        return 1
    for f in args.files:
        print(f"{f}: equal to the committed file ({', '.join(THREADED_MODELS)} within "
              f"{TOLERANCE['abs']:g} + {100 * TOLERANCE['rel']:g}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
