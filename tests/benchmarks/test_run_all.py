"""The benchmark command (benchmarks/run_all.py) in its tiny mode: it runs, and its report parses.

The tiny mode runs every section with small shapes (the default run is only described, the GPU
section says whether there is a GPU), so this test checks the whole command in well under a
minute on one core; the figures themselves are the full run's business. The renderers are also
checked on hand-made results, an ``--only`` run's merge into earlier numbers, and the committed
report against the committed numbers it is rendered from.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks import run_all
from benchmarks.bench_pipeline import DEFAULT_COMMAND, clean_env, job_stats
from benchmarks.run_all import merge, render
from recbench.threads import THREAD_ENV

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ["## Summary", "## Machine",
            "## 1. Evaluation", "## 2. Training steps", "## 3. Memory", "## 4. Data",
            "## 5. Pipeline", "## 6. The default command", "## 7. GPU", "## 8. Checkpoints",
            "## 9. Length-grouped batches", "## 10. Beyond the paper's scale"]
PNG = b"\x89PNG\r\n\x1a\n"


def tables(markdown: str) -> list[list[dict[str, str]]]:
    """Every markdown table of the text as a list of {header: cell} rows."""
    out, lines = [], markdown.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = [c.strip() for c in lines[i].strip("|").split("|")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip("|").split("|")]
                rows.append(dict(zip(header, cells)))
                i += 1
            out.append(rows)
        else:
            i += 1
    return out


def sections(markdown: str) -> dict[str, str]:
    """The report's text under each '## ' heading."""
    parts = re.split(r"^(## .*)$", markdown, flags=re.M)
    return {parts[k]: parts[k + 1] for k in range(1, len(parts), 2)}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--tiny",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    seconds = time.perf_counter() - t0
    print(f"\nrun_all.py --tiny: {seconds:.0f} s")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc, seconds


def test_the_tiny_run_writes_every_section(tiny_run):
    out, _, _ = tiny_run
    text = out.read_text()
    found = sections(text)
    for head in SECTIONS:
        assert any(h.startswith(head) for h in found), f"no section {head!r} in the report"
    assert "Failed" not in text and "failed" not in text.lower().replace("failed sections", "")
    assert "--tiny" in text.splitlines()[2]


def test_every_ratio_is_a_number(tiny_run):
    out, _, _ = tiny_run
    text = out.read_text()
    by_section = sections(text)
    measured = 0
    for head, body in by_section.items():
        for rows in tables(body):
            for row in rows:
                if "ratio" not in row and not any(k.startswith("ratio") for k in row):
                    continue
                key = next(k for k in row if k.startswith("ratio"))
                if head.startswith("## Summary") and row["status"] == "not run":
                    assert row[key] == "—", row
                    continue
                if row.get("status") == "info" and row[key] == "—":
                    continue  # a row with nothing to compare
                float(row[key].replace(",", ""))  # a number, not text
                measured += 1
    assert measured >= 15  # 2 catalogs, 5 models, 2 memory points, 1 epoch, data, pipeline, summary


def test_the_summary_has_a_status_per_section(tiny_run):
    out, _, _ = tiny_run
    summary = tables(sections(out.read_text())["## Summary"])[0]
    names = [r["section"] for r in summary]
    for prefix in ("1.", "2.", "3.", "4.", "5.", "6.", "7.", "8."):
        assert any(n.startswith(prefix) for n in names), (prefix, names)
    assert {r["status"] for r in summary} <= {"PASS", "FAIL", "info", "not run"}
    # the steps and the evaluation always have their goals from the issue
    assert next(r for r in summary if r["section"].startswith("1."))["goal"] == ">= 0.5"
    assert next(r for r in summary if r["section"].startswith("2."))["goal"] == "<= 1.2"
    assert next(r for r in summary if r["section"].startswith("8."))["goal"] == "<= 1.02"


def test_the_machine_the_default_run_and_the_gpu_are_stated(tiny_run):
    import torch

    out, _, _ = tiny_run
    by_section = sections(out.read_text())
    machine = {r[""]: r["this run"] for r in tables(by_section["## Machine"])[0]}
    for key in ("CPU", "cores (usable)", "RAM", "torch", "GPU", "date"):
        assert machine.get(key), (key, machine)
    default = next(v for k, v in by_section.items() if k.startswith("## 6."))
    assert "Not run in this invocation" in default  # never a made-up number
    gpu = next(v for k, v in by_section.items() if k.startswith("## 7."))
    if torch.cuda.is_available():
        assert "### 7.1" in gpu
    else:
        assert "No GPU on this machine" in gpu and machine["GPU"].startswith("none")


def test_plots_and_raw_numbers_are_written(tiny_run):
    out, _, _ = tiny_run
    folder = out.parent / out.stem
    for name in ("eval.png", "steps.png", "memory.png"):
        assert (folder / name).read_bytes()[:8] == PNG, name
        assert f"]({folder.name}/{name})" in out.read_text()
    raw = json.loads((folder / "benchmarks.json").read_text())
    assert raw["tiny"] is True and set(raw["sections"]) >= {"eval", "steps", "memory", "data",
                                                            "pipeline", "gpu"}
    assert not list(out.parent.glob(".*.tmp"))  # atomic writes leave no temporary file


def test_job_stats_are_parsed_from_snakemake_output():
    text = ("Building DAG of jobs...\nJob stats:\njob               count\n--------------  -------\n"
            "fetch_raw             6\ntune_trial         1517\ntotal              2065\n\n\n"
            "[Wed] rule fetch_raw:\nJob stats:\njob  count\n---  ---\ntotal  1\n")
    assert job_stats(text) == {"fetch_raw": 6, "tune_trial": 1517, "total": 2065}
    with pytest.raises(ValueError, match="Job stats"):
        job_stats("nothing planned")


def test_the_default_run_times_the_readmes_main_command():
    """--default-run measures the command the README's quick start gives, not a variant of it."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Quick start")
    quick_start = readme[start:readme.index("\n## ", start + 1)]
    main = re.search(r"```bash\n(.*?)\n```", quick_start, re.S)[1]
    assert main.split("&&")[-1].split() == list(DEFAULT_COMMAND), main


def test_the_default_run_leaves_every_thread_variable_to_the_workflow(monkeypatch):
    """--default-run times the command in a researcher's clean shell: no OMP_NUM_THREADS nor any
    other thread-pool variable, so the workflow has to set the jobs' threads itself."""
    for name in THREAD_ENV:
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("KEEP_ME", "yes")
    env = clean_env("/some/clone")
    assert not set(THREAD_ENV) & set(env) and {"OMP_NUM_THREADS", "POLARS_MAX_THREADS"} <= set(
        THREAD_ENV)
    assert env["KEEP_ME"] == "yes" and env["PYTHONPATH"] == "/some/clone"


MACHINE = {"cpu": "x", "cores": 2, "torch_threads": 2, "omp_num_threads": "unset",
           "ram_bytes": 2**34, "available_bytes_at_start": 2**33, "cuda": None,
           "torch": "2", "python": "3.11", "os": "linux", "git": "abc", "date": "today"}


def test_a_failed_or_missing_section_is_stated_in_its_place_and_in_the_summary():
    machine = MACHINE
    results = {"machine": machine, "wall_s": 1.0, "unfinished": ["steps"],
               "sections": {"eval": {"error": "RuntimeError: boom"}, "gpu": {"error": "no"}}}
    text = render(results, Path("benchmarks"), tiny=True, default_run=False)
    summary = {r["section"]: r for r in tables(sections(text)["## Summary"])[0]}
    assert summary["1. evaluation"] == {"section": "1. evaluation", "headline": "failed",
                                        "ratio": "—", "goal": ">= 0.5", "status": "FAIL"}
    assert summary["2. training steps"]["headline"] == "not measured"
    assert summary["3. memory"]["headline"] == "not run in this invocation"
    assert summary["7. GPU"]["status"] == "FAIL"
    assert summary["6. default run"]["goal"] == "<= 1 (600 s)"
    by_section = sections(text)
    assert "Failed: RuntimeError: boom" in next(v for k, v in by_section.items()
                                                if k.startswith("## 1."))
    assert "Not measured: the run stopped" in next(v for k, v in by_section.items()
                                                   if k.startswith("## 2."))
    assert summary["8. checkpoints"] == {"section": "8. checkpoints",
                                         "headline": "not run in this invocation", "ratio": "—",
                                         "goal": "<= 1.02", "status": "not run"}


#: what benchmarks/bench_checkpoint.py's ``run`` returns (in a fresh process: peaks added)
CHECKPOINT = {"every": 1, "default_every": 5, "epochs": 3, "rounds": 5, "threads": 1,
              "goal": 1.02, "peak_rss_bytes": 2**29, "base_rss_bytes": 2**28, "models": [
                  {"model": "SASRec", "epoch_s": 1.0, "epoch_checkpointed_s": 1.01,
                   "ratio": 1.01, "checkpoint_MiB": 1.44, "save_s": 0.009},
                  {"model": "CREATE", "epoch_s": 0.4, "epoch_checkpointed_s": 0.42,
                   "ratio": 1.05, "checkpoint_MiB": 2.07, "save_s": 0.012}]}


def batching_row(shape, model, random_s, length_s, ratio, goal):
    """A row of benchmarks/bench_batching.py's ``sweep``."""
    side = {"steps": 48, "epoch_wall_s": 1.0, "positions_computed": 1, "positions_real": 1,
            "mean_width": 1.0}
    return {"shape": shape, "model": model, "scale": 1, "timed_steps": 6, "goal": goal,
            "random": {**side, "epoch_cpu_s": random_s, "positions_ratio": 1.85},
            "length": {**side, "epoch_cpu_s": length_s, "positions_ratio": ratio},
            "speedup": random_s / length_s, "speedup_wall": 1.5, "ce_epoch_cpu_s": 20.0,
            "speedup_bound": random_s / 20.0}


def test_the_batching_section_renders_each_shape_against_its_goal():
    sec = [batching_row("ml-1m", "SASRec", 80.0, 40.0, 1.02, 1.6),
           batching_row("ml-1m", "CREATE", 140.0, 100.0, 1.02, 1.6),
           batching_row("beauty", "SASRec", 30.0, 7.5, 1.2, 3.0),
           {"shape": "beauty", "model": "CREATE", "error": "RuntimeError: boom"}]
    text = render({"machine": MACHINE, "wall_s": 1.0, "sections": {"batching": sec}},
                  Path("benchmarks"), tiny=False, default_run=False)
    head, body = next((k, v) for k, v in sections(text).items() if k.startswith("## 9."))
    assert "6 steps of each batching" in body and "6,040 users" in body
    rows = tables(body)[0]
    assert rows[0] == {"shape": "ml-1m", "model": "SASRec", "steps (random / length)": "48 / 48",
                       "random epoch (CPU-s)": "80.0", "length epoch (CPU-s)": "40.0",
                       "speedup (wall)": "2.00 (1.50)", "full CE alone (CPU-s)": "20.0",
                       "speedup bound": "4.00",
                       "positions computed / real (random -> length)": "1.85 -> 1.020",
                       "goal": ">= 1.6x, <= 1.15", "status": "PASS"}
    assert rows[1]["status"] == "FAIL" and rows[1]["speedup (wall)"].startswith("1.40")
    assert rows[2]["status"] == "FAIL"  # fast enough, but computes 1.2 positions per real one
    assert rows[3]["status"] == "failed: RuntimeError: boom"
    summary = {r["section"]: r for r in tables(sections(text)["## Summary"])[0]}
    assert summary["9. batching, ml-1m"] == {
        "section": "9. batching, ml-1m", "headline": "worst of 2 models (CREATE): speedup, random "
        "epoch / length", "ratio": "1.40", "goal": ">= 1.6", "status": "FAIL"}
    assert summary["9. batching, beauty"]["status"] == "PASS"
    assert summary["9. batching, positions"]["ratio"] == "1.200"
    assert summary["9. batching, positions"]["status"] == "FAIL"


def test_the_checkpoint_section_renders_each_model_against_its_goal():
    results = {"machine": MACHINE, "wall_s": 1.0, "sections": {"checkpoint": CHECKPOINT}}
    by_section = sections(render(results, Path("benchmarks"), tiny=False, default_run=False))
    head, body = next((k, v) for k, v in by_section.items() if k.startswith("## 8."))
    assert head == ("## 8. Checkpoints: a default-run epoch with a checkpoint after it against "
                    "one without")
    assert "1 thread as a default-run job has" in body and "best of 5 rounds" in body
    rows = {r["model"]: r for r in tables(body)[0]}
    assert rows["SASRec"] == {"model": "SASRec", "epoch (s)": "1.000",
                              "epoch + checkpoint (s)": "1.010", "ratio": "1.010",
                              "goal": "<= 1.02", "status": "PASS", "checkpoint (MiB)": "1.4",
                              "one save (ms)": "9"}
    assert rows["CREATE"]["ratio"] == "1.050" and rows["CREATE"]["status"] == "FAIL"
    assert rows["CREATE"]["one save (ms)"] == "12" and rows["CREATE"]["checkpoint (MiB)"] == "2.1"
    assert ("The default `checkpoint_every: 5` writes one every fifth epoch, so its overhead is a "
            "fifth of the every-epoch figure: SASRec +0.2%, CREATE +1.0% of an epoch (one save "
            "over 5 epochs: SASRec 0.2%, CREATE 0.6%).") in body
    assert "below 1" not in body
    noisy = {**CHECKPOINT, "models": [{**CHECKPOINT["models"][0], "ratio": 0.99}]}
    text = render({**results, "sections": {"checkpoint": noisy}}, Path("benchmarks"), False, False)
    assert "A ratio below 1 is this machine's noise" in text and "SASRec -0.2%" in text
    summary = {r["section"]: r for r in tables(by_section["## Summary"])[0]}
    assert summary["8. checkpoints"] == {
        "section": "8. checkpoints", "headline": "worst of 2 models (CREATE), a checkpoint after "
        "every epoch", "ratio": "1.050", "goal": "<= 1.02", "status": "FAIL"}
    failed = {**results, "sections": {"checkpoint": {"error": "ValueError: no checkpoint"}}}
    text = render(failed, Path("benchmarks"), tiny=False, default_run=False)
    assert "Failed: ValueError: no checkpoint" in text
    assert {r["section"]: r for r in tables(sections(text)["## Summary"])[0]}[
        "8. checkpoints"]["status"] == "FAIL"


def test_an_only_run_keeps_the_other_sections_numbers(tmp_path, monkeypatch):
    """``--only checkpoint`` measures that section alone and merges it into the numbers already
    there: every other section, the header's machine and mode stay, the report says where and
    when the merged one was measured, and the other sections render as before."""
    committed = ROOT / "results" / "benchmarks" / "benchmarks.json"
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "benchmarks.json").write_bytes(committed.read_bytes())
    before = json.loads(committed.read_text())
    calls = []
    monkeypatch.setattr(run_all, "run_checkpoint",
                        lambda cfg: calls.append(cfg) or dict(CHECKPOINT))
    out = tmp_path / "benchmarks.md"
    assert run_all.main(["--only", "checkpoint", "--out", str(out)]) == 0
    assert calls == [run_all.FULL["checkpoint"]]
    after = json.loads((tmp_path / "benchmarks" / "benchmarks.json").read_text())
    assert after["sections"] == {**before["sections"], "checkpoint": CHECKPOINT}
    assert after["machine"] == before["machine"] and after["wall_s"] == before["wall_s"]
    assert after["default_run"] == before["default_run"]
    # the sections merged before keep their stamps; checkpoint's is this run's
    assert set(after["merged"]) == {*before.get("merged", {}), "checkpoint"}
    assert all(after["merged"][k] == v for k, v in before.get("merged", {}).items()
               if k != "checkpoint")
    text, old = out.read_text(), sections((ROOT / "results" / "benchmarks.md").read_text())
    for head, body in sections(text).items():
        if head.startswith(("## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6.", "## 7.",
                            "## 9.")):
            assert body == old[head], head
    assert "merged into this run's report" in text.splitlines()[4]
    assert text.splitlines()[2] == (ROOT / "results" / "benchmarks.md").read_text().splitlines()[2]


def test_merge_replaces_only_the_new_sections():
    previous = {"machine": MACHINE, "wall_s": 9.0, "tiny": False, "default_run": True,
                "unfinished": ["gpu"], "sections": {"eval": [1], "steps": [2]}}
    new = {"machine": {**MACHINE, "date": "later"}, "wall_s": 1.0, "tiny": False,
           "default_run": False, "unfinished": [], "sections": {"steps": [3]}}
    out = merge(previous, new)
    assert out["sections"] == {"eval": [1], "steps": [3]} and out["machine"] == MACHINE
    assert out["wall_s"] == 9.0 and out["default_run"] is True and out["unfinished"] == ["gpu"]
    assert out["merged"]["steps"]["date"] == "later" and merge(None, new) is new


def test_the_committed_report_is_rendered_from_the_committed_numbers():
    """results/benchmarks.md is ``render`` of results/benchmarks/benchmarks.json, byte for byte."""
    results = json.loads((ROOT / "results" / "benchmarks" / "benchmarks.json").read_text())
    text = render(results, Path("results/benchmarks"), results["tiny"], results["default_run"])
    assert text + "\n" == (ROOT / "results" / "benchmarks.md").read_text()


def yambda_point(rows, total_s, peak_gib, **extra):
    """A size of benchmarks/bench_yambda_scale.py's ``measure``."""
    return {"rows": rows, "users": rows // 4665, "items": rows // 155, "file_bytes": rows * 10,
            "prepare_s": total_s / 3, "split_s": 2 * total_s / 3, "total_s": total_s,
            "seconds_per_million": total_s / (rows / 1e6), "peak_rss_bytes": peak_gib * 2**30,
            "disk_peak_bytes": rows * 60, "cleaned_up": True, **extra}


def test_the_yambda_section_extrapolates_and_judges_each_goal(tmp_path):
    from benchmarks.bench_yambda_scale import extrapolate

    points = [yambda_point(10**7, 8.0, 1.5), yambda_point(10**8, 90.0, 2.0),
              yambda_point(5 * 10**8, 450.0, 4.0)]
    sec = {"points": points, "extrapolated_rows": 4_650_000_000,
           "extrapolated_peak_bytes": extrapolate(points, 4_650_000_000),
           "peak_500m_bytes": 4.0 * 2**30}
    text = render({"machine": MACHINE, "wall_s": 1.0, "sections": {"yambda": sec}},
                  tmp_path / "plots", tiny=False, default_run=False)
    body = sections(text)["## 10. Beyond the paper's scale: prepare + split of Yambda-shaped "
                          "logs, out of core"]
    # the least-squares line through (1e7, 1.5), (1e8, 2.0), (5e8, 4.0) GiB, at 4.65e9 rows
    slope, intercept = np.polyfit([1e7, 1e8, 5e8], [1.5, 2.0, 4.0], 1)
    assert f"{intercept + slope * 4.65e9:,.2f} GiB at 4,650,000,000 rows" in body
    assert "an extrapolation, not a measurement" in body
    assert (tmp_path / "plots" / "yambda_scale.png").read_bytes()[:8] == PNG
    summary = {r["section"]: r for r in tables(text)[0]}
    assert summary["10. yambda, seconds"]["status"] == "PASS"  # worst 0.90 s per M rows
    assert summary["10. yambda, 500M peak"]["ratio"] == "0.67"
    assert summary["10. yambda, 4.65B extrapolated"]["status"] == (
        "PASS" if intercept + slope * 4.65e9 <= 24 else "FAIL")

    slow = [yambda_point(10**7, 12.0, 1.5), yambda_point(10**8, 90.0, 2.0, error="killed")]
    sec = {"points": slow, "extrapolated_rows": 4_650_000_000,
           "extrapolated_peak_bytes": extrapolate(slow, 4_650_000_000), "peak_500m_bytes": None}
    text = render({"machine": MACHINE, "wall_s": 1.0, "sections": {"yambda": sec}},
                  tmp_path / "plots2", tiny=False, default_run=False)
    summary = {r["section"]: r for r in tables(text)[0]}
    assert summary["10. yambda, seconds"]["status"] == "FAIL"  # 1.2 s per M rows
    assert summary["10. yambda, 500M peak"]["status"] == "not run"
    assert summary["10. yambda, 4.65B extrapolated"]["headline"] == "—"  # one size is no line
    assert "failed: killed" in text
