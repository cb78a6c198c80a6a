"""The committed-report check of .ci/run on hand-made files: which cells must repeat exactly,
which agree within the BLAS tolerance, Holm's derived p-values, missing or extra rows, in CSV
and markdown; every difference names the rule it broke."""

from __future__ import annotations

import shutil

import pytest

from recbench.reporting.compare import BLAS_MODELS, BLAS_TOLERANCE, compare, main
from recbench.protocol.stats import adjust_pvalues

COLUMNS = "dataset,protocol,metric,model,mean_pct,ci95_pct,p_value,correction,p_adjusted,verdict"
#: model -> (mean_pct, ci95_pct, p_value) at the precision table2.csv writes (repr of a float).
#: SVD's p-value is the second largest and CREATE's the largest, close to it, so CREATE's
#: Holm-adjusted p is SVD's times 2: derived from it.
ROWS = {
    "SASRec": (32.94153128462893, 1.0034526574031226, None),
    "CREATE": (24.389716230158727, 0.4311042118413127, 0.0011),
    "SVD": (27.641612709093186, 0.3112304564231097, 0.001),
    "EASE": (30.013277081542706, 2.7755575615628914e-15, 2.0189252104125026e-20),
    "iALS": (15.412043370317453, 0.5133187061547286, 3.574411136315063e-38),
}


def table2_csv(rows: dict) -> str:
    tested = [m for m, r in rows.items() if r[2] is not None]
    adjusted = dict(zip(tested, adjust_pvalues([rows[m][2] for m in tested], "holm")))
    lines = [COLUMNS]
    for model, (mean, ci, p) in rows.items():
        p_cells = f"{p!r},holm,{float(adjusted[model])!r}" if p is not None else ",,"
        lines.append(f"synthetic,unfiltered,ndcg@10,{model},{mean!r},{ci!r},{p_cells},")
    return "\n".join(lines) + "\n"


MD = """# Table 2: model comparison (values in %)

Caption: mean ± 95% CI over 3 seeds.

| Dataset   | Metric    | SASRec       | CREATE        | SVD           | EASE          | iALS          | Gain   |
|-----------|-----------|--------------|---------------|---------------|---------------|---------------|--------|
| synthetic | NDCG@10   | 32.94 ± 1.00 | 24.39 ± 0.43* | 27.64 ± 0.31* | 30.01 ± 0.00* | 15.41 ± 0.51* | -26%   |
| synthetic | Recall@10 | 51.48 ± 2.25 | 42.95 ± 1.47* | 33.04 ± 1.60* | 35.57 ± 0.00* | 26.22 ± 1.56* | -17%   |

Published numbers: arXiv 2602.23471.
"""

FILES = ["results/table2.csv", "results/table2.md"]


@pytest.fixture()
def roots(tmp_path):
    committed, run = tmp_path / "committed", tmp_path / "run"
    for root in (committed, run):
        (root / "results").mkdir(parents=True)
        (root / "results/table2.csv").write_text(table2_csv(ROWS))
        (root / "results/table2.md").write_text(MD)
    return committed, run


def edit(root, name, old, new):
    path = root / "results" / name
    assert path.read_text().count(old) == 1, old
    path.write_text(path.read_text().replace(old, new))


def set_rows(run, **changes):
    """Rewrite the run's table2.csv with some models' (mean, ci, p) changed, p_adjusted
    recomputed from the changed p-values as table2 would."""
    (run / "results/table2.csv").write_text(table2_csv({**ROWS, **changes}))


def sixth_digit(x: float) -> float:
    """x changed by one unit in its 6th significant digit."""
    return float(f"{x:.5e}") + float(f"1e{int(f'{x:e}'.split('e')[1]) - 5}")


def test_identical_reports_pass_and_stay_untouched(roots, capsys):
    committed, run = roots
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in committed.rglob("*.*")}
    assert compare(committed, run, FILES) == []
    assert main([str(committed), str(run), *FILES]) == 0
    assert "results/table2.csv: equal to the committed file" in capsys.readouterr().out
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in committed.rglob("*.*")} == before


@pytest.mark.parametrize("model", BLAS_MODELS)
def test_a_change_in_the_sixth_significant_digit_of_a_blas_cell_passes(roots, model):
    """What another CPU's BLAS kernels do to SVD, EASE and iALS (27.6416 against 27.6418), in
    every number of their rows, and the rendered cell's last digit flipped by the rounding;
    p_adjusted of the other models moves with their p-values (Holm) and passes too."""
    committed, run = roots
    mean, ci, p = ROWS[model]
    set_rows(run, **{model: (sixth_digit(mean), sixth_digit(ci), sixth_digit(p))})
    cell = {"SVD": "27.64 ± 0.31*", "EASE": "30.01 ± 0.00*", "iALS": "15.41 ± 0.51*"}[model]
    edit(run, "table2.md", cell, cell.replace(".31*", ".32*").replace("30.01", "30.02")
         .replace("15.41", "15.40"))
    assert compare(committed, run, FILES) == []
    if model == "SVD":  # CREATE's adjusted p is SVD's times 2 (Holm): it changed, and passed
        rows = [(root / "results/table2.csv").read_text().splitlines()[2] for root in roots]
        assert ",CREATE," in rows[0] and rows[0] != rows[1]


@pytest.mark.parametrize("model", [*ROWS])
def test_a_change_of_a_tenth_of_a_point_fails_in_every_cell(roots, model):
    committed, run = roots
    mean, ci, p = ROWS[model]
    set_rows(run, **{model: (mean + 0.1, ci, p)})
    row = "| synthetic | NDCG@10   |"
    line = next(line for line in MD.splitlines() if line.startswith(row))
    cell = [c.strip() for c in line.strip("|").split("|")][[*ROWS].index(model) + 2]
    value = float(cell.split(" ")[0])
    edit(run, "table2.md", f"| {cell} |", f"| {value + 0.1:.2f}{cell[len(cell.split(' ')[0]):]} |")
    differences = compare(committed, run, FILES)
    rule = "rule blas" if model in BLAS_MODELS else "rule exact"
    assert [d.split(":")[0] for d in differences] == ["table2.csv", "table2.md"], differences
    assert f"{model}), column 'mean_pct'" in differences[0] and rule in differences[0]
    assert f"column '{model}'" in differences[1] and rule in differences[1]
    # the tolerance and a rounding flip of the rendered cell stay below a tenth of a point
    assert BLAS_TOLERANCE["points"] + 0.01 < 0.1


@pytest.mark.parametrize("model", ["SASRec", "CREATE"])
def test_any_change_in_a_sasrec_or_create_cell_fails(roots, model):
    """Their numbers repeat bit for bit: a change in the last digit of the CSV's text, or of
    the rendered cell, is a difference."""
    committed, run = roots
    mean, ci, p = ROWS[model]
    set_rows(run, **{model: (mean, ci + 1e-15 * ci, p)})
    old, new = {"SASRec": ("32.94 ± 1.00", "32.95 ± 1.00"),
                "CREATE": ("24.39 ± 0.43*", "24.40 ± 0.43*")}[model]
    edit(run, "table2.md", f"| {old} ", f"| {new} ")
    differences = compare(committed, run, FILES)
    assert len(differences) == 2, differences
    assert all("[rule exact" in d for d in differences), differences
    assert f"{model}), column 'ci95_pct'" in differences[0]
    assert f"column '{model}'" in differences[1]


def test_a_derived_p_adjusted_that_the_blas_cells_do_not_explain_fails(roots):
    """CREATE's p_adjusted may move only as Holm's correction of the run's BLAS p-values
    implies; its own p-value not at all."""
    committed, run = roots
    text = (committed / "results/table2.csv").read_text()
    create = next(line for line in text.splitlines() if ",CREATE," in line)
    adjusted = create.split(",")[-2]
    edit(run, "table2.csv", create, create.replace(f",{adjusted},",
                                                  f",{float(adjusted) * (1 + 1e-6)!r},"))
    [difference] = compare(committed, run, FILES)
    assert "CREATE), column 'p_adjusted'" in difference and "[rule holm" in difference
    assert f"expected {float(adjusted)!r}" in difference
    set_rows(run, CREATE=(*ROWS["CREATE"][:2], sixth_digit(ROWS["CREATE"][2])))
    differences = compare(committed, run, FILES)
    assert any("CREATE), column 'p_value'" in d and "[rule exact" in d for d in differences)


def test_a_blas_cell_beyond_the_tolerance_or_a_flipped_mark_fails(roots):
    committed, run = roots
    edit(run, "table2.md", "15.41 ± 0.51*", "15.41 ± 0.51")  # no longer significant
    mean, ci, p = ROWS["iALS"]
    set_rows(run, iALS=(mean + 1.5 * BLAS_TOLERANCE["points"], ci, p))
    differences = compare(committed, run, FILES)
    assert len(differences) == 2, differences
    assert "iALS), column 'mean_pct'" in differences[0] and "rule blas" in differences[0]
    assert "column 'iALS'" in differences[1] and "text apart from the numbers" in differences[1]


def test_missing_and_extra_rows_are_named(roots):
    committed, run = roots
    text = (run / "results/table2.csv").read_text()
    svd = next(line for line in text.splitlines() if ",SVD," in line)
    edit(run, "table2.csv", svd + "\n", "")
    (run / "results/table2.csv").write_text((run / "results/table2.csv").read_text()
                                            + "synthetic,unfiltered,ndcg@10,PopRnd,0.9,1.2,,,,\n")
    recall = [line for line in MD.splitlines() if "Recall@10" in line][0]
    edit(run, "table2.md", recall + "\n", "")
    differences = compare(committed, run, FILES)
    assert differences[:2] == [
        "table2.csv: row (synthetic, unfiltered, ndcg@10, SVD) missing from the run",
        "table2.csv: row (synthetic, unfiltered, ndcg@10, PopRnd) only in the run (not committed)"]
    assert differences[-1] == f"table2.md: line 8 missing from the run: {recall!r} [rule exact: " \
                              "bit-stable across CPUs, any change fails]"


def test_a_missing_file_or_column_is_a_difference(roots):
    committed, run = roots
    (run / "results/table2.md").unlink()
    lines = (run / "results/table2.csv").read_text().splitlines()
    (run / "results/table2.csv").write_text("\n".join(line.rsplit(",", 1)[0] for line in lines))
    out = compare(committed, run, FILES)
    assert "table2.csv: column 'verdict' only in the committed file" in out
    assert "results/table2.md: no run file" in out
    shutil.rmtree(run)
    assert main([str(committed), str(run), *FILES]) == 1
