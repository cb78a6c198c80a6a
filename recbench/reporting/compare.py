"""Compare a run's rendered reports with the committed ones, cell by cell.

    python -m recbench.reporting.compare COMMITTED_ROOT RUN_ROOT results/table2.csv ...

.ci/run renders the default run in a clean clone and calls this against the committed files:
it prints every differing cell (file, row, column, committed and run values, and the rule the
difference broke) and exits 1, or prints one line per file and exits 0. It writes nothing.

What "equal" means, by rule (each difference names its rule):

- ``exact``: the cell's text must be equal. Every cell but those below: the neural models
  (SASRec, CREATE, BERT4Rec, MRGSRec, LightGCN, UltraGCN), Random and PopRnd, the counts, the
  Gains, claims and verdicts of reproduction.md, all of Table 3. Their numbers come from torch's
  CPU kernels under the suite's thread settings (one thread per job, ``recbench/threads.py``,
  so no reduction is split differently from run to run) and from numpy without BLAS. Measured
  below, they repeat bit for bit run to run and under every OpenBLAS and MKL setting (MKL's
  matrix products, which torch calls, give the same bits at every ``MKL_ENABLE_INSTRUCTIONS``
  and ``MKL_CBWR`` branch but COMPATIBLE, which no CPU picks): SASRec's trained weights are
  identical. torch's own kernels (softmax among them) are compiled per instruction set
  and picked for the CPU (``ATEN_CPU_CAPABILITY``): forced to avx2 on this AVX-512 machine,
  every one of SASRec's weight tensors differs after 3 epochs (by up to 4e-4; so do BERT4Rec's,
  MRGSRec's and CREATE's, not LightGCN's or UltraGCN's), though the table2.csv cells came out
  equal. So every job pins torch's kernels to AVX2 (``recbench/threads.py``, ``CPU_KERNELS``),
  and the committed reports are rendered so: these cells are then exact on every x86-64 CPU
  with AVX2, which no tolerance should loosen (a neural model's cells move by training noise,
  not by last digits).
- ``blas``: the cells of BLAS_MODELS, fitted by numpy / scipy / scikit-learn on OpenBLAS, which
  picks its kernels for the CPU at load time (SVD's randomized solver, iALS's least squares in
  implicit, on one thread; EASE's inverse, which moved under no kernel measured): the same code
  and seeds give other last digits on another CPU. Their numbers must agree within
  BLAS_TOLERANCE on the reported scale (percentage points, or -log10 p for a p-value), plus, in
  a markdown report, one unit of the number's last printed digit (a rounding may flip it);
  their text otherwise equal, so a significance mark or a verdict that flips is a difference. A
  CSV row is such a cell when its ``model`` is one of them, a markdown table cell when its row
  or column is named after one.
- ``holm``: ``p_adjusted`` of another model's row in table2.csv depends on every p-value of its
  Holm family (dataset, protocol, metric), the BLAS models' included. It must equal, to float
  rounding (1e-12 relative), what its correction gives on the committed p-values with the BLAS
  rows' p-values of the run in their place: a change that the tolerated BLAS cells explain, and
  nothing else. Its model's own p-value stays under ``exact``.
- EXCLUDED_COLUMNS (timings and machine facts) are not compared. The reports CI renders
  (table2.csv, table2.md, reproduction.md, table3.csv, table3.md) have none; the manifest and
  benchmarks.md, which hold them, are neither rendered nor compared there.

The measured spread. The default config's SVD, EASE and iALS (3 tuning trials each) and SASRec
(3 epochs) through the pipeline (tune, train, evaluate; 3 seeds; table2.csv, 132 rows) on one
machine (AMD EPYC with AVX-512; numpy and scipy on OpenBLAS 0.3.31 / 0.3.30, DYNAMIC_ARCH, which
picks SkylakeX here; torch 2.13 with MKL 2024.2, ATen at AVX512), once per setting, each against
the run of the default setting; largest |run - default| of a table2.csv cell:

    setting                          cells differing  points (model, column)   -log10 p
    the default again                 0                -                        -
    OPENBLAS_CORETYPE=Haswell         20 (SVD, iALS)   0.0015 (iALS ci95_pct)   0.0013
      (AVX2 + FMA: the kernels of the x86 CPUs without AVX-512, AMD Zen's included)
        SVD: mean_pct 0.00033 (27.6416 against 27.6418 in NDCG@100, as between the machines
        that rendered the committed file), ci95_pct 0.0014, p_value 0.0011; iALS: mean_pct
        0.00024, ci95_pct 0.0015, p_value 0.0013; EASE, SASRec: none
    OPENBLAS_CORETYPE=Sandybridge     22 (SVD, iALS)   0.088 (iALS ci95_pct)    0.0050
    OPENBLAS_CORETYPE=Nehalem         21 (SVD, iALS)   0.078 (iALS ci95_pct)    0.011
      (AVX, SSE4.2: no FMA; iALS's coverage@10 differs by one item of one seed, 0.034 points
      on the mean)
    MKL_ENABLE_INSTRUCTIONS=AVX2      0                -                        -
    MKL_ENABLE_INSTRUCTIONS=SSE4_2    0                -                        -
    ATEN_CPU_CAPABILITY=avx2          0                -                        -
    ATEN_CPU_CAPABILITY=default       0                -                        -
      (cells equal; SASRec's weights differ in every tensor, by up to 4e-4)

and, for the other torch models, the default config's BERT4Rec, MRGSRec, LightGCN,
UltraGCN and CREATE (3 epochs, CREATE after 1 warm-up epoch; SASRec 2; one trial each) at
ATEN_CPU_CAPABILITY=avx2 against the default: no table2.csv cell differs; the weights of
LightGCN and UltraGCN are identical, those of SASRec, BERT4Rec, MRGSRec and CREATE differ in
(nearly) every tensor, by up to 3.9e-4, 6.7e-4, 1.9e-4 and 1.9e-5.

BLAS_TOLERANCE is ten times the spread between the FMA kernels (SkylakeX, Haswell), rounded
up: 0.02 points, 0.02 on -log10 p. A change of 0.1 point fails in every cell, one in the 6th
significant digit passes. The kernels without FMA (x86 CPUs from before 2013, and small
Atom-class cores) move iALS's cells by up to 0.09 points (one item of one seed's coverage@10:
0.034 on the mean, 0.088 on its ±): too close to a real 0.1-point change to tolerate; on such a
CPU CI fails on those iALS cells (2 under Sandybridge, 6 under Nehalem) and names them (rule
blas). The rule replaced here, exact but for iALS within 0.05 + 1 %, failed on the Haswell run
(8 SVD cells) and on the Sandybridge one; this one passes the first and fails the second.

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


#: models fitted by BLAS / LAPACK code, whose last digits depend on the CPU's kernels
BLAS_MODELS = ("SVD", "EASE", "iALS")
#: |run - committed| allowed in a BLAS model's cell, on its reported scale: percentage points
#: (the *_pct columns and the markdown cells; other numbers as they are), or -log10 p for a
#: p-value. The largest spread measured (module docstring), times 10: far below 0.1 point
BLAS_TOLERANCE = {"points": 0.02, "log10_p": 0.02}
#: ``holm``: a derived p_adjusted must equal its recomputation to float rounding
DERIVED_REL = 1e-12
P_VALUE_COLUMNS = ("p_value", "p_adjusted", "p_equivalent")
EXCLUDED_COLUMNS: dict[str, tuple[str, ...]] = {}  # file pattern -> columns; none rendered yet
#: the columns that identify a CSV row, per file name pattern (others: the row's position)
KEYS = {
    "table2.csv": ("dataset", "protocol", "metric", "model"),
    "table[345].csv": ("dataset", "metric", "model"),
    "fig2_training_curves.csv": ("dataset", "epoch"),
    "fig[345]_*.csv": ("dataset", "label"),
}
#: table2.csv's Holm families: the rows of one (dataset, protocol, metric)
FAMILY = ("dataset", "protocol", "metric")


_NUMBER = re.compile(r"[-+−]?\d+(?:[.,]\d+)*(?:\.\d+)?(?:e[-+]?\d+)?%?", re.IGNORECASE)


EXACT = "rule exact: bit-stable across CPUs, any change fails"


def _spec(table: dict, name: str, default):
    for pattern, value in table.items():
        if fnmatch.fnmatch(name, pattern):
            return value
    return default


def _float(text: str) -> float:
    return float(text.replace("−", "-").replace(",", "").rstrip("%"))


def _scale(value: float, p_value: bool) -> float:
    return -math.log10(max(value, 1e-300)) if p_value else value


def _blas_problem(committed: float, run: float, p_value: bool = False,
                  printed_unit: float = 0.0) -> str | None:
    """Why ``run`` is not within the ``blas`` tolerance of ``committed``; None when it is."""
    if math.isnan(committed) or math.isnan(run):
        return None if math.isnan(committed) and math.isnan(run) else "one of them is NaN"
    a, b = _scale(committed, p_value), _scale(run, p_value)
    allowed = BLAS_TOLERANCE["log10_p" if p_value else "points"] + printed_unit
    if abs(b - a) <= allowed * (1 + 1e-9):
        return None
    scale = " on -log10 p" if p_value else ""
    return f"|run - committed|{scale} {abs(b - a):.3g} > {allowed:.3g}"


def _unit(text: str) -> float:
    """One unit of the last printed digit of a number's text (0.01 for "27.64")."""
    mantissa = re.split("[eE]", text.rstrip("%"))[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(re.split("[eE]", text.rstrip("%"))[1]) if re.search("[eE]", text) else 0
    return 10.0 ** (exponent - decimals)


def _blas_text_problem(committed: str, run: str) -> str | None:
    """Equal text apart from numbers, which agree within the ``blas`` tolerance and one unit of
    their last printed digit; else why not."""
    a, b = _NUMBER.findall(committed), _NUMBER.findall(run)
    if _NUMBER.sub("#", committed) != _NUMBER.sub("#", run) or len(a) != len(b):
        return "its text apart from the numbers differs"
    for x, y in zip(a, b):
        problem = _blas_problem(_float(x), _float(y), printed_unit=max(_unit(x), _unit(y)))
        if problem:
            return f"{x} against {y}: {problem}"
    return None


def _tolerance_text() -> str:
    return (f"{', '.join(BLAS_MODELS)} within {BLAS_TOLERANCE['points']:g} points, "
            f"{BLAS_TOLERANCE['log10_p']:g} on -log10 p")


def _blas_rule(problem: str) -> str:
    return f"rule blas ({_tolerance_text()}): {problem}"


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
        for column in row.index[row]:
            x, y = left.loc[key, column], right.loc[key, column]
            if model in BLAS_MODELS:
                try:
                    problem = _blas_problem(float(x), float(y), column in P_VALUE_COLUMNS)
                except ValueError:
                    problem = "not a number: its text must be equal"
                if problem is None:
                    continue
                rule = _blas_rule(problem)
            elif column == "p_adjusted" and model_in_key and set(FAMILY) <= set(keys):
                rule = _holm_problem(a, b, keys, key, y)
                if rule is None:
                    continue
            else:
                rule = EXACT
            out.append(f"{name}: row {_key(key)}, column {column!r}: committed {x!r}, "
                       f"run {y!r} [{rule}]")
    return out


def _holm_problem(a: pd.DataFrame, b: pd.DataFrame, keys: list[str], key, run_text: str) -> str:
    """None when the run's p_adjusted of a non-BLAS row is what its correction gives on the
    committed p-values with the run's BLAS p-values in their place; else the ``holm`` rule's
    complaint."""
    from recbench.protocol.stats import adjust_pvalues

    where = dict(zip(keys, key))
    family = a.reset_index()
    for k in FAMILY:
        family = family[family[k] == where[k]]
    family = family[family.p_value != ""]
    run_p = b.p_value
    p = []
    for _, r in family.iterrows():
        k = tuple(r[c] for c in keys)
        blas = r["model"] in BLAS_MODELS and k in run_p.index
        p.append(float(run_p.loc[k] if blas else r["p_value"]))
    methods = set(family.correction) if "correction" in family else {"holm"}
    rule = "rule holm (p_adjusted may change only as the BLAS models' p-values imply)"
    if len(methods) != 1 or not run_text or where["model"] not in list(family.model):
        return f"{rule}: no single correction, or no committed p-value to check it against"
    expected = float(adjust_pvalues(p, methods.pop())[list(family.model).index(where["model"])])
    if math.isclose(float(run_text), expected, rel_tol=DERIVED_REL):
        return None
    return f"{rule}: expected {expected!r}"


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
        out += [f"{name}: line {i + 1} missing from the run: {a[i]!r} [{EXACT}]"
                for i in range(i1, i2)]
        out += [f"{name}: line {j + 1} of the run not committed: {b[j]!r} [{EXACT}]"
                for j in range(j1, j2)]
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
        return [f"{name}: line {number}: committed {x!r}, run {y!r} [{EXACT}]"]
    blas_row = any(c in BLAS_MODELS for c in cx)
    label = ", ".join(c for c in cx[:3] if c and not _NUMBER.fullmatch(c.split(" ")[0]))
    out = []
    for column, u, v in zip(header, cx, cy):
        if u == v:
            continue
        rule = EXACT
        if blas_row or column in BLAS_MODELS:
            problem = _blas_text_problem(u, v)
            if problem is None:
                continue
            rule = _blas_rule(problem)
        out.append(f"{name}: line {number} ({label}), column {column!r}: committed {u!r}, "
                   f"run {v!r} [{rule}]")
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
        print(f"{f}: equal to the committed file ({_tolerance_text()}, Holm's p_adjusted as "
              "they imply)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
