"""The committed-report check of .ci/run on hand-made files: equal, a cell off, a tolerated iALS
difference, a missing or extra row, in CSV and markdown."""

from __future__ import annotations

import shutil

import pytest

from recbench.compare_reports import compare, main

CSV = """dataset,protocol,metric,model,mean_pct,ci95_pct,p_value,p_adjusted,verdict
synthetic,unfiltered,ndcg@10,SASRec,32.94,1.00,,,
synthetic,unfiltered,ndcg@10,SVD,15.25,0.18,1.0e-40,3.0e-40,
synthetic,unfiltered,ndcg@10,iALS,15.41,0.51,2.0e-38,4.0e-38,
"""

MD = """# Table 2: model comparison (values in %)

Caption: mean ± 95% CI over 3 seeds.

| Dataset   | Metric    | SASRec       | SVD           | iALS          |
|-----------|-----------|--------------|---------------|---------------|
| synthetic | NDCG@10   | 32.94 ± 1.00 | 15.25 ± 0.18* | 15.41 ± 0.51* |
| synthetic | Recall@10 | 51.48 ± 2.25 | 25.88 ± 0.43* | 26.22 ± 1.56* |

Published numbers: arXiv 2602.23471.
"""


@pytest.fixture()
def roots(tmp_path):
    committed, run = tmp_path / "committed", tmp_path / "run"
    for root in (committed, run):
        (root / "results").mkdir(parents=True)
        (root / "results/table2.csv").write_text(CSV)
        (root / "results/table2.md").write_text(MD)
    return committed, run


FILES = ["results/table2.csv", "results/table2.md"]


def edit(root, name, old, new):
    path = root / "results" / name
    assert path.read_text().count(old) == 1
    path.write_text(path.read_text().replace(old, new))


def test_identical_reports_pass_and_stay_untouched(roots, capsys):
    committed, run = roots
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in committed.rglob("*.*")}
    assert compare(committed, run, FILES) == []
    assert main([str(committed), str(run), *FILES]) == 0
    assert "results/table2.csv: equal to the committed file" in capsys.readouterr().out
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in committed.rglob("*.*")} == before


def test_a_cell_off_is_named(roots, capsys):
    committed, run = roots
    edit(run, "table2.csv", "SVD,15.25,0.18", "SVD,15.26,0.18")
    edit(run, "table2.md", "15.25 ± 0.18*", "15.26 ± 0.18*")
    differences = compare(committed, run, FILES)
    assert differences == [
        "table2.csv: row (synthetic, unfiltered, ndcg@10, SVD), column 'mean_pct': committed "
        "'15.25', run '15.26'",
        "table2.md: line 7 (synthetic, NDCG@10), column 'SVD': committed '15.25 ± 0.18*', "
        "run '15.26 ± 0.18*'"]
    assert main([str(committed), str(run), *FILES]) == 1
    out = capsys.readouterr()
    assert "column 'mean_pct'" in out.out and "not what this commit's code renders" in out.err


def test_ials_differences_within_the_tolerance_pass(roots):
    committed, run = roots
    edit(run, "table2.csv", "iALS,15.41,0.51,2.0e-38,4.0e-38", "iALS,15.42,0.51,2.2e-38,4.4e-38")
    edit(run, "table2.csv", "SVD,15.25,0.18,1.0e-40,3.0e-40", "SVD,15.25,0.18,1.0e-40,3.1e-40")
    edit(run, "table2.md", "15.41 ± 0.51*", "15.42 ± 0.51*")
    assert compare(committed, run, FILES) == []
    # beyond the tolerance, or a significance mark that flips, is a difference even for iALS
    edit(run, "table2.md", "15.42 ± 0.51*", "16.41 ± 0.51*")
    edit(run, "table2.md", "26.22 ± 1.56*", "26.22 ± 1.56")
    edit(run, "table2.csv", "iALS,15.42", "iALS,16.41")
    assert [d.split(":")[0] + ":" + d.split("column")[1].split(":")[0] for d in compare(
        committed, run, FILES)] == ["table2.csv: 'mean_pct'", "table2.md: 'iALS'",
                                    "table2.md: 'iALS'"]
    # the same change to a model that repeats exactly is a difference
    edit(run, "table2.csv", "SVD,15.25,0.18,1.0e-40,3.1e-40", "SVD,15.25,0.18,1.1e-40,3.1e-40")
    assert any("SVD), column 'p_value'" in d for d in compare(committed, run, FILES))


def test_missing_and_extra_rows_are_named(roots):
    committed, run = roots
    edit(run, "table2.csv", "synthetic,unfiltered,ndcg@10,SVD,15.25,0.18,1.0e-40,3.0e-40,\n", "")
    (run / "results/table2.csv").write_text((run / "results/table2.csv").read_text()
                                            + "synthetic,unfiltered,ndcg@10,EASE,17.84,0.00,,,\n")
    recall = "| synthetic | Recall@10 | 51.48 ± 2.25 | 25.88 ± 0.43* | 26.22 ± 1.56* |\n"
    edit(run, "table2.md", recall, "")
    assert compare(committed, run, FILES) == [
        "table2.csv: row (synthetic, unfiltered, ndcg@10, SVD) missing from the run",
        "table2.csv: row (synthetic, unfiltered, ndcg@10, EASE) only in the run (not committed)",
        "table2.md: line 8 missing from the run: '| synthetic | Recall@10 | 51.48 ± 2.25 | "
        "25.88 ± 0.43* | 26.22 ± 1.56* |'"]


def test_a_missing_file_or_column_is_a_difference(roots):
    committed, run = roots
    (run / "results/table2.md").unlink()
    (run / "results/table2.csv").write_text(CSV.replace(",verdict\n", "\n", 1).replace(",\n", "\n"))
    out = compare(committed, run, FILES)
    assert "table2.csv: column 'verdict' only in the committed file" in out
    assert "results/table2.md: no run file" in out
    shutil.rmtree(run)
    assert main([str(committed), str(run), *FILES]) == 1
