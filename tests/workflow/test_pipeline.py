"""The Snakemake pipeline as a researcher runs it, in a throw-away copy of the repository."""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml
from _shared import TOY_MODULE, reversed_keys

from recbench.errors import ConfigError
from recbench.threads import THREAD_ENV

ROOT = Path(__file__).resolve().parents[2]
COPY = ["Snakefile", "workflow", "config", "baselines", "create_model", "recbench"]

TINY = {
    "seeds": [0, 1],
    "device": "cpu",
    "datasets": {"tiny": {"source": "synthetic",
                          "params": {"n_users": 300, "n_items": 200, "n_communities": 4,
                                     "seed": 5}}},
    "tuning": {"trials": 3, "seed": 0, "startup_trials": 2},
    "models": {"Random": {}, "PopRnd": {}, "ToyPop": None,
               "SVD": {"params": {"rank": 16}, "search": {"rank": [4, 16, 64]}}},
}


def make_copy(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest / name)
    (dest / "environment.yml").write_text((ROOT / "environment.yml").read_text())
    return dest


def snakemake(repo: Path, *args: str, check: bool = True,
              env: dict | None = None) -> subprocess.CompletedProcess:
    # the copy's packages win over the install
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture()
def repo(tmp_path):
    return make_copy(tmp_path / "repo")


TINY_TARGETS = ["results/runs/tiny/table2.md", "results/runs/tiny/reproduction.md"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One complete run of TINY (a new baseline module among its models), made once per module:
    tests copy it (``finished``), never change it."""
    repo = make_copy(tmp_path_factory.mktemp("tiny_run") / "repo")
    (repo / "baselines" / "toypop.py").write_text(TOY_MODULE)
    (repo / "config" / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    snakemake(repo, "--cores", "2", *TINY_TARGETS, "--configfile", "config/tiny.yaml")
    return repo


@pytest.fixture()
def finished(tiny_run, tmp_path):
    """A copy of the complete TINY run, Snakemake's records (.snakemake/) and every file's
    modification time included, so that Snakemake finds it as complete as the original."""
    return Path(shutil.copytree(tiny_run, tmp_path / "repo", symlinks=True))


@pytest.mark.slow
def test_end_to_end_with_a_new_baseline_module(finished):
    """A new model is one module in baselines/ plus one config entry; no rule changes."""
    repo = finished
    run = repo / "results/runs/tiny"  # a config other than the default one: its own reports
    assert sorted(p.name for p in (repo / "results").iterdir()) == ["runs", "tiny"]

    summary = json.loads((repo / "results/tiny/split_summary.json").read_text())
    assert summary["test_users"] > 0 and summary["T"] > summary["T_valid"]
    assert summary["prepare"]["rows"] == summary["prepare"]["interactions"] > 0
    for model in TINY["models"]:
        for seed in TINY["seeds"]:
            d = repo / f"results/tiny/{model}/seed{seed}"
            assert set(json.loads((d / "metrics.json").read_text())) >= {
                "ndcg@10", "recall@10", "coverage@10", "ndcg@100", "recall@100", "coverage@100"}
            assert len(pd.read_parquet(d / "per_user.parquet")) == summary["test_users"]
            # both protocols: the configured one (filter_seen: false) on top, the other beside it
            metrics = json.loads((d / "metrics.json").read_text())
            assert metrics["protocol"] == "unfiltered" and set(metrics["history_filtered"]) == {
                "ndcg@10", "recall@10", "coverage@10", "ndcg@100", "recall@100", "coverage@100"}
            assert {"ndcg@10", "history_filtered/ndcg@10"} <= set(
                pd.read_parquet(d / "per_user.parquet").columns)

    # tuning: SVD ran 3 trials (the defaults first), the others one; every seed retrained the
    # best trial's parameters
    from recbench.protocol.tuning import retrain_params

    best = json.loads((repo / "results/tiny/SVD/best_params.json").read_text())
    assert [t["trial"] for t in best["trials"]] == [0, 1, 2]
    assert best["trials"][0]["params"] == {"rank": 16}
    assert best["valid_ndcg@10"] == max(t["value"] for t in best["trials"])
    assert (repo / "results/tiny/SVD/tuning/optuna.db").exists()
    assert [json.loads((repo / f"results/tiny/SVD/tuning/trial{k}.json").read_text())["value"]
            for k in range(3)] == [t["value"] for t in best["trials"]]
    assert not list((repo / "results").rglob("*.partial"))  # finished studies are renamed
    for model in TINY["models"]:
        best = json.loads((repo / f"results/tiny/{model}/best_params.json").read_text())
        for seed in TINY["seeds"]:
            used = json.loads((repo / f"results/tiny/{model}/seed{seed}/metrics.json").read_text())
            assert used["params"] == retrain_params(best)
    assert not (repo / "results/tiny/Random/tuning/trial1.json").exists()

    # the rendered table holds the seed means of the per-seed files, in %
    table = (run / "table2.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| Dataset"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols[:2] == ["Dataset", "Metric"] and set(cols[2:]) == set(TINY["models"])
    row = next(line for line in table.splitlines() if line.startswith("| tiny") and "NDCG@10 " in line)
    cells = dict(zip(cols, [c.strip() for c in row.strip("|").split("|")]))
    for model in TINY["models"]:
        values = [json.loads((repo / f"results/tiny/{model}/seed{s}/metrics.json").read_text())
                  ["ndcg@10"] for s in TINY["seeds"]]
        mean = float(re.match(r"([0-9.]+) ± [0-9.]+$", cells[model]).group(1))
        assert mean == pytest.approx(100 * sum(values) / len(values), abs=0.006)
    csv = pd.read_csv(run / "table2.csv")
    assert set(csv.model) == set(TINY["models"]) and (csv.n_seeds == 2).all()
    assert set(csv.protocol) == {"unfiltered", "history_filtered"}
    assert set(csv[csv.configured].protocol) == {"unfiltered"} and "p_adjusted" in csv
    assert "Protocol: unfiltered (`evaluation.filter_seen: false`)" in table
    assert {"n_users", "user_sd_pct", "verdict", "margin_pct"} <= set(csv.columns)
    assert (csv[csv.metric == "ndcg@10"].n_users == summary["test_users"]).all()
    reproduction = (run / "reproduction.md").read_text()
    assert "No published cell to compare" in reproduction and "No claim to test" in reproduction

    # a second run has nothing to do
    again = snakemake(repo, "--cores", "2", "results/runs/tiny/table2.md", "--configfile",
                      "config/tiny.yaml")
    assert "Nothing to be done" in again.stdout + again.stderr
    # --forcerun recomputes a study (never reads an old trial back) and gets the same result
    before = (repo / "results/tiny/SVD/best_params.json").read_text()
    forced = snakemake(repo, "--cores", "2", "results/tiny/SVD/best_params.json", "--forcerun",
                       "tune", "--configfile", "config/tiny.yaml")
    assert re.search(r"tune\s+1\b", forced.stdout + forced.stderr)
    log = (repo / "logs/tune/tiny/SVD.log").read_text()
    assert "read back" not in log and "trial 2:" in log
    assert (repo / "results/tiny/SVD/best_params.json").read_text() == before

    # provenance and the one-page report
    snakemake(repo, "--cores", "1", "results/runs/tiny/manifest.json", "--configfile",
              "config/tiny.yaml")
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["seeds"] == TINY["seeds"] and len(manifest["config_sha256"]) == 64
    assert set(manifest["datasets"]) == {"tiny"}
    assert manifest["prepare"]["tiny"] == summary["prepare"]
    assert "train/tiny/SVD/seed1" in manifest["jobs"] and "tune/tiny/SVD" in manifest["jobs"]
    assert manifest["job_devices"]["tiny/SVD/seed0"]
    snakemake(repo, "results/runs/tiny/table2.md", "results/runs/tiny/manifest.json", "--report",
              "results/runs/tiny/report.html", "--configfile", "config/tiny.yaml")
    assert (run / "report.html").stat().st_size > 10_000
    assert not (repo / "results/table2.md").exists()  # the default run's reports: never written

    # every final fit saved its model; one call loads it and it recommends in external ids
    from recbench.artefacts import load

    model = load(repo / "results/tiny/SVD/seed0")
    user = model.ids.users[model.ids.test.users[0]]
    assert len(model.recommend([user], k=5)) == 5

    # Snakemake's rerun triggers: a changed `evaluation.ks` re-evaluates the saved models and
    # trains nothing; a changed protocol (what tuning selects on) reruns the studies too
    ks = ["--configfile", "config/tiny.yaml", "--config", "evaluation={ks: [10, 20, 100]}"]
    dry = snakemake(repo, "-n", "--cores", "2", "results/runs/tiny/table2.md", *ks).stdout
    stats = job_stats(dry)
    assert stats["evaluate"] == len(TINY["models"]) * len(TINY["seeds"]), dry
    assert not {"tune", "train"} & set(stats), dry
    old = json.loads((repo / "results/tiny/SVD/seed0/metrics.json").read_text())
    snakemake(repo, "--cores", "2", "results/tiny/SVD/seed0/metrics.json", *ks)
    new = json.loads((repo / "results/tiny/SVD/seed0/metrics.json").read_text())
    assert {k: new[k] for k in old if "@" in k} == {k: old[k] for k in old if "@" in k}
    assert "ndcg@20" in new and "ndcg@20" not in old
    dry = snakemake(repo, "-n", "--cores", "2", "results/runs/tiny/table2.md", "--configfile",
                    "config/tiny.yaml", "--config", "evaluation={filter_seen: true}").stdout
    assert job_stats(dry)["tune"] == len(TINY["models"]), dry
    # without saved models a fit is temporary: evaluated, then removed
    snakemake(repo, "--cores", "2", "results/tiny/SVD/seed1/metrics.json", "--forcerun", "train",
              "--configfile", "config/tiny.yaml", "--config", "save_models=false")
    assert (repo / "results/tiny/SVD/seed1/metrics.json").exists()
    assert not (repo / "results/tiny/SVD/seed1/model").exists()


def key_orders(value, path=()) -> dict[tuple, list]:
    """path -> the key order of every mapping of ``value`` with two keys or more."""
    out = {}
    if isinstance(value, dict):
        if len(value) > 1:
            out[path] = list(value)
        for k, v in value.items():
            out.update(key_orders(v, (*path, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.update(key_orders(v, (*path, i)))
    return out


def reordered_config(repo: Path) -> dict:
    """The run's config as the workflow reads it (the schema's defaults filled, so that they
    move too) with every mapping's keys in another order, at every depth."""
    from recbench.protocol import config as cfgmod

    full = cfgmod.load_validated(repo / "config/tiny.yaml", repo / "config/schema.yaml")
    reordered = reversed_keys(full)
    before, after = key_orders(full), key_orders(reordered)
    assert len(before) >= 8 and all(after[p] != keys for p, keys in before.items())
    assert reordered == full  # the same config
    return reordered


@pytest.mark.slow
def test_a_config_with_its_keys_reordered_reruns_nothing(finished):
    """Snakemake reruns a job whose params read differently from those it recorded
    (.snakemake/metadata), and a dict reads in its keys' order: every rule passes its params
    through recbench.canonical, so the complete run's config written with its keys in another
    order at every level plans no job."""
    repo = finished
    (repo / "config/tiny.yaml").write_text(yaml.safe_dump(reordered_config(repo), sort_keys=False))
    dry = snakemake(repo, "-n", "--cores", "2", *TINY_TARGETS, "--configfile", "config/tiny.yaml")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout


@pytest.mark.slow
def test_a_changed_value_reruns_exactly_the_jobs_that_depend_on_it(finished):
    """One value changed in the reordered config: the dry run plans the jobs that depend on it
    and nothing else."""
    import copy

    repo = finished
    reordered = reordered_config(repo)

    def plan(key: str, value) -> tuple[dict, str]:
        changed = copy.deepcopy(reordered)
        *parents, last = key.split(".")
        node = changed
        for k in parents:
            node = node[k]
        assert node[last] != value, key
        node[last] = value
        (repo / "config/tiny.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
        out = snakemake(repo, "-n", "--cores", "2", *TINY_TARGETS, "--configfile",
                        "config/tiny.yaml").stdout
        assert "Params have changed" in out, out
        return job_stats(out), out

    # one model's parameter: its study, its fits and evaluations, the two reports
    stats, out = plan("models.SVD.params.rank", 4)
    assert stats == {"tune": 1, "train": 2, "evaluate": 2, "table2": 1, "reproduction": 1}, out
    assert set(re.findall(r"wildcards: dataset=tiny, model=([^,\s]+)", out)) == {"SVD"}, out
    # a setting of the significance test: the reports alone
    stats, out = plan("significance.alpha", 0.01)
    assert stats == {"table2": 1, "reproduction": 1}, out
    # the data: everything of the dataset
    n = len(TINY["models"]) * len(TINY["seeds"])
    stats, out = plan("datasets.tiny.params.seed", 6)
    assert stats == {"fetch_raw": 1, "prepare": 1, "split": 1, "tune": len(TINY["models"]),
                     "train": n, "evaluate": n, "table2": 1, "reproduction": 1}, out


def test_lint_is_clean():
    proc = snakemake(ROOT, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


# runs Snakemake's command line and, at exit, writes the names of every module it imported
WITH_MODULES = """import atexit, runpy, sys
out, sys.argv = sys.argv[1], ["snakemake", *sys.argv[2:]]
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
runpy.run_module("snakemake", run_name="__main__", alter_sys=True)
"""


def test_paper_config_dry_run_plans_all_datasets(repo, tmp_path):
    modules_file = tmp_path / "modules.txt"
    proc = subprocess.run([sys.executable, "-c", WITH_MODULES, str(modules_file), "-n",
                           "results/runs/paper/table2.md", "--configfile", "config/paper.yaml"],
                          cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)},
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # it checked every model's parameters from their declarations, without model code or torch
    modules = set(modules_file.read_text().split())
    assert {"recbench.protocol.config", "baselines.params", "create_model.params"} <= modules
    model_code = sorted(m for m in modules if m.split(".")[0] == "torch"
                        or m.split(".")[0] in ("baselines", "create_model")
                        and m not in ("baselines", "create_model") and not m.endswith(".params"))
    assert model_code == [], model_code
    out = proc.stdout + proc.stderr
    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    for dataset in ["ml-1m", "beauty", "sports", "clothing", "yambda-50m-likes"]:
        assert dataset in paper["datasets"]
        assert f"data/raw/{dataset}/" in out
    assert re.search(r"fetch_raw\s+5", out)
    # the paper config replaces the default one: the embedded dataset is not planned
    assert "data/raw/synthetic/" not in out and "results/synthetic/" not in out
    assert not (repo / "data").exists()  # a dry run touches nothing


def job_stats(out: str) -> dict[str, int]:
    """rule -> number of jobs, from a dry run's "Job stats" table (total left out)."""
    stats = out[out.index("Job stats:"):]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)
            if m[1] != "total"}


def job_threads(out: str, rule: str) -> set[int]:
    """The threads of every job of a rule in a dry run's listing (1 when not printed)."""
    blocks = [b.split("\n[")[0] for b in out.split(f"rule {rule}:")[1:]]  # up to the next job
    assert blocks, f"no {rule} job planned:\n{out}"
    return {int(m[1]) if (m := re.search(r"^\s+threads: (\d+)$", b, re.M)) else 1
            for b in blocks}


def test_config_overrides_layer_on_the_default_config(repo):
    """--config and a profile's `config:` change one key of the config in use, not all of it;
    the default config changed so reports as the run "custom"."""
    out = snakemake(repo, "-n", "--cores", "4", "results/table2.md").stdout
    assert "results/table2.md" in out and "results/runs/" not in out  # the default run
    out = snakemake(repo, "-n", "--cores", "4", "results/runs/custom/table2.md", "--config",
                    "threads=2").stdout
    assert "results/synthetic/SASRec/seed0/metrics.json" in out  # the default run's data
    assert job_threads(out, "train") == {2}
    profile = repo / "profiles" / "mine"
    profile.mkdir(parents=True)
    (profile / "config.yaml").write_text("config:\n  - threads=3\n")
    out = snakemake(repo, "-n", "--cores", "4", "--profile", "profiles/mine",
                    "results/runs/custom/table2.md").stdout
    assert "results/synthetic/SASRec/seed0/metrics.json" in out
    assert job_threads(out, "train") == {3}
    # on the paper config too: its datasets, the override's threads
    out = snakemake(repo, "-n", "--cores", "4", "results/runs/paper/table2.md", "--configfile",
                    "config/paper.yaml", "--config", "threads=2").stdout
    assert "results/ml-1m/SASRec/seed0/metrics.json" in out and "results/synthetic/" not in out
    assert job_threads(out, "train") == {2}


def test_config_values_from_the_command_line_are_typed(repo):
    """A list, a nested number and a nested boolean on the command line pass validation as the
    schema types them (Snakemake hands them over as text); a wrong value names its key in a few
    lines; a dotted key is refused by Snakemake itself (the README shows the nested form)."""
    args = ["-n", "--cores", "2", "results/runs/quick/table2.md", "--config", "run=quick",
            "seeds=[0]", "tuning={trials: 5}", "evaluation={filter_seen: true}"]
    out = snakemake(repo, *args).stdout
    assert re.search(r"^train\s+11$", out, re.M)  # 11 models, one seed
    assert re.search(r"^evaluate\s+11$", out, re.M)
    assert "results/synthetic/SASRec/seed1/" not in out and "results/runs/quick/table2.md" in out
    proc = snakemake(repo, *args[:-1], "evaluation={filter_seen: sometimes}", check=False)
    err = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "evaluation.filter_seen: 'sometimes' is not of type 'boolean'" in err
    assert "$schema" not in err and len(err.splitlines()) < 40, err
    proc = snakemake(repo, "-n", "results/table2.md", "--config", "evaluation.filter_seen=true",
                     check=False)
    assert proc.returncode != 0 and "valid identifier" in proc.stdout + proc.stderr


def test_a_custom_run_never_overwrites_the_default_reports(repo):
    """Another config's reports go to results/runs/<its name>/; asking it for a default-run
    report is refused when the jobs are planned, naming the path to ask for instead."""
    (repo / "config" / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "models": {"PopRnd": {}}}))
    proc = snakemake(repo, "-n", "results/table2.md", "--configfile", "config/tiny.yaml",
                     check=False)
    assert proc.returncode != 0
    assert "ask for results/runs/tiny/table2.md" in proc.stdout + proc.stderr
    out = snakemake(repo, "-n", "--configfile", "config/tiny.yaml").stdout  # rule all
    for planned in ("output: results/runs/tiny/table2.md", "output: results/runs/tiny/reproduction",
                    "output: results/runs/tiny/manifest.json", "results/tiny/PopRnd/seed0/"):
        assert planned in out, planned
    assert not re.search(r"output: results/(table2|reproduction|manifest)", out)


BAD_CONFIGS = [
    ({"models": {"NoSuchModel": {}}}, "unknown model 'NoSuchModel'"),
    ({"models": {"SVD": {"params": {"rnk": 3}}}}, "unknown parameter"),
    ({"seeds": "zero"}, "seeds"),
    ({"device": "tpu"}, "device"),
    ({"threads": 0}, "threads"),
    ({"datasets": {"mine": {"path": "/nowhere.csv"}}}, "columns"),
    ({"reproduction": {"margin": 1.5}}, "reproduction"),
    ({"reproduction": {"paper_seed_noise": "theirs"}}, "paper_seed_noise"),
    ({"models": {"SVD": {"params": {"rank": 0}}}}, "models.SVD.rank must be >= 1"),
    ({"modles": {}}, "unknown key(s) ['modles']"),
]


@pytest.mark.parametrize("patch, message", BAD_CONFIGS)
def test_bad_config_is_refused_by_the_workflows_checks(patch, message):
    """What the workflow does at its start (workflow/rules/common.smk) with this --configfile
    (which replaces config/config.yaml): ``validate`` then ``check``, in this process (a
    Snakemake start per case costs seconds; the next test runs two of them end to end)."""
    from recbench.protocol import config as cfg

    config = copy.deepcopy({**TINY, **patch})
    with pytest.raises(ConfigError) as refused:
        cfg.validate(config, None, ROOT / "config/schema.yaml")
        cfg.check(config)
    assert message in str(refused.value)
    assert "$schema" not in str(refused.value)  # the key, never the whole schema


# a missing custom file is found when the jobs are planned, not by the checks above
MISSING_FILE = ({"models": {"PopRnd": {}}, "datasets": {"mine": {
    "path": "/nowhere.csv", "columns": {"user": "u", "item": "i", "timestamp": "t"}}}},
    "datasets.mine.path: /nowhere.csv does")


@pytest.mark.parametrize("patch, message", [BAD_CONFIGS[0], BAD_CONFIGS[-1], MISSING_FILE])
def test_bad_config_stops_before_any_job(repo, patch, message):
    cfg = {**TINY, **patch}
    (repo / "config" / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(repo, "-n", "results/runs/bad/table2.md", "--configfile", "config/bad.yaml",
                     check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert "$schema" not in proc.stdout + proc.stderr  # the key, never the whole schema


def test_unknown_dataset_or_model_in_a_target(repo):
    cfg = {**TINY, "models": {"PopRnd": {}}}
    (repo / "config" / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    for target, message in [("results/nosuch/split_summary.json", "unknown dataset 'nosuch'"),
                            ("results/tiny/NoModel/seed0/metrics.json", "'NoModel' is not in config")]:
        proc = snakemake(repo, "-n", target, "--configfile", "config/tiny.yaml", check=False)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr


def test_custom_dataset_from_a_local_csv(repo, tmp_path):
    from recbench.data.synthetic import SyntheticConfig, generate

    log = generate(SyntheticConfig(n_users=200, n_items=150, n_communities=3, seed=1)).to_pandas()
    log.columns = ["uid", "iid", "ts"]
    log.to_csv(tmp_path / "mine.csv", index=False)
    cfg = {"seeds": [0], "device": "cpu", "models": {"PopRnd": {}},
           "datasets": {"mine": {"path": str(tmp_path / "mine.csv"),
                                 "columns": {"user": "uid", "item": "iid", "timestamp": "ts"}}}}
    (repo / "config" / "mine.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(repo, "--cores", "1", "results/mine/split_summary.json", "--configfile", "config/mine.yaml")
    summary = json.loads((repo / "results/mine/split_summary.json").read_text())
    assert summary["interactions"] == len(log[log.groupby("uid").uid.transform("size") >= 3])
    assert summary["prepare"] == {"rows": len(log), "invalid_rows": 0, "on_invalid": "error",
                                  "dropped_invalid": 0, "duplicate_rows": 0, "duplicates": "keep",
                                  "dropped_duplicates": 0, "interactions": len(log)}


def custom_config(path: Path, **entry) -> dict:
    return {"seeds": [0], "device": "cpu", "models": {"PopRnd": {}},
            "datasets": {"mine": {"path": str(path), **entry,
                                  "columns": {"user": "uid", "item": "iid", "timestamp": "ts"}}}}


def custom_log(seed: int = 1):
    from recbench.data.synthetic import SyntheticConfig, generate

    log = generate(SyntheticConfig(n_users=200, n_items=150, n_communities=3, seed=seed))
    return log.to_pandas().set_axis(["uid", "iid", "ts"], axis=1)


def test_unusable_rows_stop_prepare_and_leave_nothing_behind(repo, tmp_path):
    """Missing timestamps stop the prepare job with the count, the rows and the fix, and no
    prepared file is left; with on_invalid: drop exactly those rows go, counted in the split
    summary."""
    import numpy as np

    log = custom_log().astype({"ts": float})
    log.loc[np.arange(len(log)) % 10 == 3, "ts"] = np.nan
    n_bad = int(log.ts.isna().sum())
    log.to_csv(tmp_path / "mine.csv", index=False)
    (repo / "config" / "mine.yaml").write_text(yaml.safe_dump(custom_config(tmp_path / "mine.csv")))
    proc = snakemake(repo, "--cores", "1", "results/mine/split_summary.json", "--configfile",
                     "config/mine.yaml", check=False)
    assert proc.returncode != 0
    message = (repo / "logs/prepare/mine.log").read_text()
    assert f"mine: {n_bad:,} of {len(log):,} rows" in message and "row 4: uid=" in message
    assert "`on_invalid: drop` to datasets.mine" in message
    assert not list(repo.glob("data/prepared/*"))  # nothing half-written, nothing stale
    (repo / "config" / "mine.yaml").write_text(yaml.safe_dump(custom_config(
        tmp_path / "mine.csv", on_invalid="drop", duplicates="drop")))
    snakemake(repo, "--cores", "1", "results/mine/split_summary.json", "--configfile",
              "config/mine.yaml")
    summary = json.loads((repo / "results/mine/split_summary.json").read_text())
    assert summary["prepare"]["dropped_invalid"] == n_bad and summary["prepare"]["rows"] == len(log)
    assert summary["prepare"]["interactions"] == len(log) - n_bad - summary["prepare"][
        "dropped_duplicates"]


def test_a_changed_custom_file_or_path_reruns_prepare_and_what_follows(repo, tmp_path):
    """Snakemake's own triggers: new content (even in a file older than the prepared log), or
    `path:` pointing at another file, plan prepare and split again; a path to no file fails the
    dry run, naming the key."""
    log = custom_log()
    log.to_csv(tmp_path / "mine.csv", index=False)
    (repo / "config" / "mine.yaml").write_text(yaml.safe_dump(custom_config(tmp_path / "mine.csv")))
    args = ["results/mine/split_summary.json", "--configfile", "config/mine.yaml"]
    snakemake(repo, "--cores", "1", *args)
    again = snakemake(repo, "-n", *args)
    assert "Nothing to be done" in again.stdout + again.stderr

    def planned() -> set[str]:
        out = snakemake(repo, "-n", *args).stdout
        return {rule for rule in ("prepare", "split") if re.search(rf"^{rule}\s+1$", out, re.M)}

    old = os.stat(tmp_path / "mine.csv")
    log.iloc[:-5].to_csv(tmp_path / "mine.csv", index=False)  # other content, the old mtime
    os.utime(tmp_path / "mine.csv", ns=(old.st_atime_ns, old.st_mtime_ns - 10**9))
    assert planned() == {"prepare", "split"}
    log.to_csv(tmp_path / "mine.csv", index=False)
    snakemake(repo, "--cores", "1", *args)
    custom_log(seed=2).to_csv(tmp_path / "other.csv", index=False)
    (repo / "config" / "mine.yaml").write_text(
        yaml.safe_dump(custom_config(tmp_path / "other.csv")))
    assert planned() == {"prepare", "split"}
    (repo / "config" / "mine.yaml").write_text(yaml.safe_dump(custom_config(tmp_path / "gone.csv")))
    proc = snakemake(repo, "-n", *args, check=False)
    assert proc.returncode != 0
    missing = f"datasets.mine.path: {tmp_path / 'gone.csv'} does not exist"
    assert missing in proc.stdout + proc.stderr


def test_a_failed_job_has_its_traceback_in_its_log(repo, tmp_path):
    """A job that fails on purpose (its csv lacks the configured columns): the error and its
    traceback are in the job's log file, which --show-failed-logs prints."""
    (tmp_path / "bad.csv").write_text("a,b,c\n1,2,3\n")
    cfg = {"seeds": [0], "device": "cpu", "models": {"PopRnd": {}},
           "datasets": {"bad": {"path": str(tmp_path / "bad.csv"),
                                "columns": {"user": "uid", "item": "iid", "timestamp": "ts"}}}}
    (repo / "config" / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(repo, "--cores", "1", "--show-failed-logs", "data/prepared/bad.parquet",
                     "--configfile", "config/bad.yaml", check=False)
    assert proc.returncode != 0
    log = (repo / "logs/prepare/bad.log").read_text()
    assert "Traceback (most recent call last)" in log and "uid" in log, log
    assert log.count("Traceback") == 1
    shown = proc.stdout + proc.stderr
    assert shown.count("Traceback (most recent call last)") >= 2  # stderr, and the log shown


def job_windows(logs: list[Path]) -> list[tuple[datetime, datetime]]:
    """(first, last) timestamp of each job log (recbench.logs' format)."""
    windows = []
    for log in logs:
        stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", log.read_text(), re.M)
        windows.append(tuple(datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f")
                             for t in (stamps[0], stamps[-1])))
    return windows


def most_at_once(windows) -> int:
    return max(sum(a <= t < b for a, b in windows) for t, _ in windows)


def test_never_more_training_threads_than_cores(repo):
    """--cores 8 on a machine with fewer cores runs at most as many tuning jobs at once as it has
    cores; --resources cpu_threads=N sets another limit. Each job's OpenMP, BLAS, torch and
    polars pools have the job's threads, whatever the shell's variables say."""
    cores = len(os.sched_getaffinity(0))
    models = {"Random": {}, "PopRnd": {}, "SVD": {"params": {"rank": 8}},
              "EASE": {"params": {"l2": 10.0}}, "iALS": {"params": {"factors": 8}}}
    (repo / "config" / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "models": models}))
    targets = [f"results/tiny/{m}/best_params.json" for m in models]
    # whatever the shell says, each job's thread pools follow its threads (1 in TINY)
    shell = {name: "7" for name in THREAD_ENV}
    for limit, expected in [([], cores), (["--resources", "cpu_threads=1"], 1)]:
        shutil.rmtree(repo / "results", ignore_errors=True)
        shutil.rmtree(repo / "logs", ignore_errors=True)
        proc = snakemake(repo, "--cores", "8", *targets, *limit, "--configfile", "config/tiny.yaml",
                         env=shell)
        assert re.search(rf"Provided resources: .*cpu_threads\D+{expected}\b", proc.stderr)
        logs = list((repo / "logs/tune/tiny").glob("*.log"))
        assert most_at_once(job_windows(logs)) <= expected
        for log in logs:
            pools = ast.literal_eval(re.search(r"thread pools: (.*)$", log.read_text(), re.M)[1])
            assert pools["torch"] == pools["torch_interop"] == pools["polars"] == 1, pools
            assert pools["threadpools"] and {n for _, n in pools["threadpools"]} == {1}, pools


def test_jobs_import_the_checkouts_code_first(repo, tmp_path):
    """Another copy of the project earlier on PYTHONPATH (an install of another checkout) is
    shadowed by the checkout the workflow runs from, in the workflow and in its jobs."""
    shadow = tmp_path / "shadow" / "recbench"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('the shadowing copy was imported')\n")
    (repo / "config" / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "models": {"PopRnd": {}}}))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1",
                           "data/prepared/tiny.parquet", "--configfile", "config/tiny.yaml"],
                          cwd=repo, env={**os.environ, "PYTHONPATH": str(shadow.parent)},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (repo / "data/prepared/tiny.parquet").exists()


def test_config_check_catches_dataset_errors():
    from recbench.protocol.config import check

    base = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    bad = {**base, "datasets": {"x": {"source": "synthetic", "exclude_models": ["Nope"]}}}
    with pytest.raises(ConfigError, match="Nope"):
        check(bad)


STUDY_TARGETS = ["results/runs/tiny/table4.md", "results/runs/tiny/table5.md",
                 *(f"results/runs/tiny/figures/{f}.png" for f in [
                     "fig2_training_curves", "fig3_graph_size", "fig4_warmup",
                     "fig5_barlow_weight"])]


@pytest.mark.slow
def test_ablation_reports_one_job_per_point(repo):
    """Tables 4-5 and Figures 2-5 on tiny budgets: every point is a job; shared points run once."""
    seq = {"dim": 16, "n_layers": 1, "n_heads": 1, "max_len": 10, "progress": False}
    create = {"sequential": {k: v for k, v in seq.items() if k != "progress"},
              "graph": {"graph_last_n": 10, "LightGCN": {"n_layers": 1},
                        "UltraGCN": {"negative_num": 5}},
              "epochs": 3, "warmup_epochs": 1, "patience": None, "progress": False}
    one = {"base": "CREATE", "datasets": ["tiny"], "seeds": [0]}
    cfg = {**TINY, "models": {"SASRec": {"params": {**seq, "epochs": 2}},
                              "CREATE": {"params": create}},
           "studies": {
               "table4": {**one, "include": ["SASRec"],
                          "grid": {"graph_backbone": ["LightGCN", "UltraGCN"],
                                   "alignment": ["none", "barlow"]}},
               "table5": {**one, "grid": {"sequential_backbone": ["SASRec", "BERT4Rec"]}},
               "fig2_training_curves": one,
               "fig3_graph_size": {**one, "set": {"graph.graph_last_n": None},
                                   "grid": {"graph.graph_last_fraction": [0.5]}},
               "fig4_warmup": {**one, "grid": {"warmup_epochs": [0, 1]}},
               "fig5_barlow_weight": {**one, "grid": {"w_align": [0.0, 0.1]}}}}
    (repo / "config" / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    dry = snakemake(repo, "-n", *STUDY_TARGETS, "--configfile", "config/tiny.yaml").stdout
    # SASRec; CREATE; alignment none x 2 graphs; UltraGCN + barlow; BERT4Rec; a graph size;
    # warm-up 0; w_align 0: 9 labels, one tuning trial and one seed each. The base CREATE point
    # (LightGCN, barlow, SASRec, warm-up 1, w_align 0.1 by default) is shared by every study.
    assert re.search(r"^train\s+9$", dry, re.M) and re.search(r"^evaluate\s+9$", dry, re.M) and re.search(r"tune\s+9\b", dry), dry
    snakemake(repo, "--cores", "2", *STUDY_TARGETS, "--configfile", "config/tiny.yaml")

    table4 = (repo / "results/runs/tiny/table4.md").read_text()
    assert "Sequential (SASRec)" in table4 and "UltraGCN" in table4
    summary = pd.read_csv(repo / "results/runs/tiny/table4.csv")
    metrics = json.loads((repo / "results/tiny/CREATE~alignment=none/seed0/metrics.json").read_text())
    row = summary[(summary.model == "CREATE~alignment=none") & (summary.metric == "ndcg@10")]
    assert row.mean_pct.iloc[0] == pytest.approx(100 * metrics["ndcg@10"])
    assert metrics["params"]["alignment"] == "none"
    assert "| BERT4Rec" in (repo / "results/runs/tiny/table5.md").read_text()
    fig4 = pd.read_csv(repo / "results/runs/tiny/figures/fig4_warmup.csv")
    assert list(fig4.warmup_epochs) == [0, 1] and list(fig4.label) == ["CREATE~warmup_epochs=0", "CREATE"]
    fig2 = pd.read_csv(repo / "results/runs/tiny/figures/fig2_training_curves.csv")
    # 1 warm-up epoch, then `epochs: 3` joint ones (validated)
    assert list(fig2.epoch) == [1, 2, 3, 4] and fig2["val_ndcg@10"].iloc[1:].notna().all()
    for target in STUDY_TARGETS[2:]:
        assert (repo / target).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_tables(tmp_path):
    """SIGTERM in the middle of a tuning study's second trial, rerun the same command: it
    finishes, recomputes nothing that had finished (the study resumes at its first unfinished
    trial, with the suggestions of an uninterrupted run), and renders the tables of an
    uninterrupted run. A second run started while the first is running is refused by
    Snakemake's lock."""
    import signal
    import time

    sasrec = {"params": {"dim": 16, "n_layers": 1, "n_heads": 1, "max_len": 10, "epochs": 25,
                         "patience": None, "dropout": 0.2, "progress": False},
              "search": {"dropout": {"low": 0.1, "high": 0.5}}}
    cfg = {**TINY, "seeds": [0],
           "models": {"PopRnd": {}, "SVD": TINY["models"]["SVD"], "SASRec": sasrec}}
    args = ["--cores", "1", "results/runs/tiny/table2.md", "--configfile", "config/tiny.yaml"]
    runs = {}
    for name in ("straight", "killed"):
        runs[name] = make_copy(tmp_path / name)
        (runs[name] / "config" / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(runs["straight"], "--cores", "2", *args[2:])  # the same tables on any --cores

    repo = runs["killed"]
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=repo,
                            env={**os.environ, "PYTHONPATH": str(repo)}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    log = repo / "logs/tune/tiny/SASRec.log"
    while time.time() < deadline and not re.search(
            r"trial 1:[\s\S]*epoch 3:", log.read_text() if log.exists() else ""):
        assert proc.poll() is None, "the run ended before SASRec's trial 1 started training"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=120)
    assert not (repo / "results/runs/tiny/table2.md").exists()
    finished = {p: p.stat().st_mtime_ns for p in (repo / "results").rglob("*.json")
                if "tuning.partial" not in p.parts}
    assert finished, "nothing had finished before the kill"
    # the interrupted study: trial 0 finished, in the folder Snakemake does not remove
    assert not (repo / "results/tiny/SASRec/tuning").exists()
    trial0 = repo / "results/tiny/SASRec/tuning.partial/trial0.json"
    trial0_done = (trial0.read_text(), trial0.stat().st_mtime_ns)
    assert not (trial0.parent / "trial1.json").exists()

    rerun = subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=repo,
                             env={**os.environ, "PYTHONPATH": str(repo)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not list((repo / ".snakemake/locks").glob("*")):  # the rerun holds the lock
        assert rerun.poll() is None, "the rerun ended before it locked the directory"
        time.sleep(0.05)
    # The same command started again meanwhile is refused. Snakemake checks for incomplete
    # outputs while it builds the DAG, before it takes the lock: if one of the rerun's jobs is
    # already running, the refusal names that job's outputs, otherwise the lock.
    second = snakemake(repo, *args, check=False)
    said = second.stdout + second.stderr
    assert second.returncode != 0, said
    assert "cannot be locked" in said or (
        "Incomplete files:" in said and "results/tiny/" in said.split("Incomplete files:")[1]), said
    assert rerun.wait(timeout=600) == 0
    for path, mtime in finished.items():
        assert path.stat().st_mtime_ns == mtime, f"{path} was recomputed"
    resumed = repo / "results/tiny/SASRec/tuning/trial0.json"
    assert (resumed.read_text(), resumed.stat().st_mtime_ns) == trial0_done
    rerun_log = log.read_text()
    assert "trial 0 finished before the job was interrupted: read back" in rerun_log
    assert "trial 0:" not in rerun_log and "trial 1:" in rerun_log and "trial 2:" in rerun_log
    assert not (repo / "results/tiny/SASRec/tuning.partial").exists()
    for model in ("SVD", "SASRec"):  # the suggestions and outcomes of an uninterrupted study
        assert (repo / f"results/tiny/{model}/best_params.json").read_text() == (
            runs["straight"] / f"results/tiny/{model}/best_params.json").read_text()
    assert (repo / "results/runs/tiny/table2.csv").read_text() == (
        runs["straight"] / "results/runs/tiny/table2.csv").read_text()


@pytest.mark.slow
def test_table3_in_the_loom_protocol(repo):
    """One prepared log, two protocols: Table 3 from the LOOM split, the bridge from ours."""
    seq = {"dim": 16, "n_layers": 1, "n_heads": 1, "max_len": 10, "epochs": 2, "progress": False}
    cfg = {**TINY, "seeds": [0],
           "datasets": {**TINY["datasets"],
                        "tiny-loom": {"prepared_from": "tiny", "table2": False,
                                      "split": {"protocol": "loom", "k_core": 5}}},
           "models": {"SASRec": {"params": seq}, "PopRnd": {}},
           "table3": {"datasets": {"Beauty": "tiny-loom"}, "bridge": {"tiny-loom": "tiny"},
                      "models": ["SASRec", "PopRnd"]}}
    (repo / "config" / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(repo, "--cores", "2", "results/runs/tiny/table3.md", "--configfile",
              "config/tiny.yaml")
    loom = json.loads((repo / "results/tiny-loom/split_summary.json").read_text())
    ours = json.loads((repo / "results/tiny/split_summary.json").read_text())
    assert loom["protocol"] == "loom" and ours["protocol"] == "global_temporal"
    assert loom["test_users"] > ours["test_users"]  # every user is a test user in leave-one-out
    assert not (repo / "data/prepared/tiny-loom.parquet").exists()  # one prepared log
    table = (repo / "results/runs/tiny/table3.md").read_text()
    assert "1.43 (quoted)" in table and "PopRnd (ours, LOOM setup)" in table
    metrics = json.loads((repo / "results/tiny-loom/SASRec/seed0/metrics.json").read_text())
    assert f"{100 * metrics['recall@10']:.2f} ± " in table or f"{100 * metrics['recall@10']:.2f} [" in table


@pytest.mark.slow
def test_readings_report_on_a_custom_log(repo, tmp_path):
    """results/readings.md from a custom-dataset config in leave-one-out: SASRec, the default
    and two readings, each its own jobs; every number of readings.csv is that of its job files.
    The bundle has too many overrides for a readable label: its jobs run under a digest."""
    from recbench.data.synthetic import SyntheticConfig, generate
    from recbench.protocol.studies import apply_overrides

    log = generate(SyntheticConfig(n_users=250, n_items=150, n_communities=4, seed=3))
    log.rename({"user": "uid", "item": "iid", "timestamp": "ts"}).write_csv(tmp_path / "log.csv")
    seq = {"dim": 16, "n_layers": 1, "n_heads": 1, "max_len": 10}
    bundle = {"alignment": "none", "barlow_lambda": 0.01, "barlow_scale": "sum", "w_align": 0.2,
              "w_global": 0.2, "temperature": 0.3, "sequential.dropout": 0.3,
              "sequential.n_heads": 2, "graph.LightGCN.reg": 0.001, "graph.LightGCN.n_layers": 2,
              "graph.graph_last_n": 8, "lr": 0.003}
    cfg = {"seeds": [0, 1], "device": "cpu", "tuning": {"trials": 1},
           "datasets": {"mydata": {"path": str(tmp_path / "log.csv"),
                                   "columns": {"user": "uid", "item": "iid", "timestamp": "ts"},
                                   "split": {"protocol": "loom", "k_core": 2}}},
           "models": {"SASRec": {"params": {**seq, "epochs": 3, "patience": 1,
                                            "progress": False}},
                      "CREATE": {"params": {"sequential": seq, "epochs": 3, "patience": 1,
                                            "warmup_epochs": 1, "progress": False,
                                            "graph": {"graph_last_n": 10,
                                                      "LightGCN": {"n_layers": 1}}}}},
           "studies": {"readings": {"base": "CREATE", "datasets": ["mydata"],
                                    "include": ["SASRec"],
                                    "variants": {"bundle": bundle, "longer": {"epochs": 4}}}}}
    (repo / "config" / "mine.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    args = ["results/runs/mine/readings.md", "--configfile", "config/mine.yaml"]
    dry = snakemake(repo, "-n", *args).stdout
    assert re.search(r"tune\s+4\b", dry) and re.search(r"^train\s+8$", dry, re.M), dry
    snakemake(repo, "--cores", "2", *args)

    table = pd.read_csv(repo / "results/runs/mine/readings.csv")
    assert list(table.name) == ["SASRec", "default", "bundle", "longer"]
    assert list(table.label[[0, 1, 3]]) == ["SASRec", "CREATE", "CREATE~epochs=4"]
    assert table.label[2].startswith("CREATE~overrides=")
    for _, row in table.iterrows():
        folder = repo / "results/mydata" / row.label
        ndcg = [json.loads((folder / f"seed{s}/metrics.json").read_text())["ndcg@10"]
                for s in (0, 1)]
        assert row["ndcg@10_mean_pct"] == pytest.approx(50 * sum(ndcg))
        best = json.loads((folder / "best_params.json").read_text())
        assert row["valid_ndcg@10_pct"] == pytest.approx(100 * best["valid_ndcg@10"])
        histories = [pd.read_csv(folder / f"seed{s}/training/history.csv") for s in (0, 1)]
        phase = histories[0]["phase"] if "phase" in histories[0] else pd.Series(dtype=str)
        warmup = int((phase == "warmup").sum())  # CREATE's warm-up epoch: 1; SASRec: 0
        assert row.epochs_trained == len(histories[0]) - warmup == best["best_epoch"]
        assert row.seconds_per_epoch == pytest.approx(pd.concat(histories).seconds.mean())
    # a reading is the default's tuned parameters plus its overrides
    default = json.loads((repo / "results/mydata/CREATE/best_params.json").read_text())["params"]
    reading = json.loads((repo / f"results/mydata/{table.label[2]}/seed0/metrics.json")
                         .read_text())["params"]
    expected = apply_overrides(default, bundle)
    assert reading.pop("epochs") <= expected.pop("epochs") and reading == expected
    assert list(table.budget_differs) == [False, False, False, True]  # epochs 4, not 3
    text = (repo / "results/runs/mine/readings.md").read_text()
    assert "## mydata" in text and "(budget ≠ SASRec's)" in text and "never on test" in text
    assert (repo / "results/runs/mine/figures/readings.png").read_bytes()[:4] == b"\x89PNG"
    assert not (repo / "results/readings.md").exists()  # the default run's report: untouched


def test_default_config_plans_the_readings_report(repo):
    """`snakemake results/readings.md` on the default config: one tuning job per point, one
    training job per point and seed, SASRec's and the default's shared with Table 2."""
    from recbench.protocol import config as cfgmod

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    labels = {p.label for p in cfgmod.study_points(config, "readings", "synthetic")}
    assert {"SASRec", "CREATE"} <= labels
    dry = snakemake(repo, "-n", "results/readings.md").stdout
    assert re.search(rf"tune\s+{len(labels)}\b", dry), dry
    seeds = config["studies"]["readings"].get("seeds", config["seeds"])
    assert re.search(rf"^train\s+{len(labels) * len(seeds)}$", dry, re.M), dry
    assert re.search(r"readings\s+1\b", dry), dry


SELECTING = {
    "seeds": [0],
    "device": "cpu",
    "datasets": {"tiny": {"source": "synthetic",
                          "params": {"n_users": 300, "n_items": 200, "n_communities": 4,
                                     "seed": 5}}},
    "tuning": {"trials": 2, "seed": 0, "startup_trials": 2},
    "models": {
        "PopRnd": {},
        # any model can select a reading; SVD's rank makes the candidates cheap and different
        "SVD": {"params": {"rank": 16, "scaling": 1.0},
                "search": {"scaling": {"low": 0.0, "high": 1.0}},
                "readings": {"select": "validation",
                             "candidates": {"rank2": {"rank": 2}, "rank16": {"rank": 16},
                                            "rank1": {"rank": 1}}}},
    },
}


def job_inputs(dry: str, rule: str) -> list[str]:
    """The declared inputs of every job of ``rule`` in a dry run's listing."""
    blocks = [b.split("\n[")[0] for b in re.split(r"^(?:local)?(?:rule|checkpoint) ", dry,
                                                  flags=re.M)[1:] if b.startswith(f"{rule}:")]
    assert blocks, f"no {rule} job planned:\n{dry}"
    return [f.strip() for b in blocks for m in re.finditer(r"^\s+input: (.*)$", b, re.M)
            for f in m[1].split(",")]


def output(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def jobs_run(out: str) -> dict[str, int]:
    """rule -> jobs a real run started, from its log (a checkpoint adds jobs after the first
    "Job stats" table, so that table is not the whole run)."""
    names = re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):$", out, re.M)
    return {n: names.count(n) for n in set(names)}


@pytest.mark.slow
def test_a_reading_chosen_on_validation(repo):
    """Each candidate is one job that reads no test file, the selection picks the best
    validation NDCG@10, the chosen bundle is tuned (the winner's fit reused as trial 0) and
    named in the reports; reruns happen exactly where the choice changed."""
    (repo / "config" / "sel.yaml").write_text(yaml.safe_dump(SELECTING))
    conf = ["--configfile", "config/sel.yaml"]
    targets = ["results/runs/sel/table2.md", "results/runs/sel/reading_selection.md"]
    dry = snakemake(repo, "-n", "--cores", "2", *targets, *conf).stdout
    assert job_stats(dry)["reading_fit"] == 3 and job_stats(dry)["select_reading"] == 1
    for rule in ("reading_fit", "select_reading"):  # test data cannot reach the choice
        inputs = job_inputs(dry, rule)
        assert inputs and not [f for f in inputs if "test" in Path(f).name], (rule, inputs)
    assert any(f.endswith("/train.parquet") for f in job_inputs(dry, "reading_fit"))
    snakemake(repo, "--cores", "2", *targets, *conf)

    folder = repo / "results/tiny/SVD"
    records = {c: json.loads((folder / f"readings/{c}/record.json").read_text())
               for c in ("rank2", "rank16", "rank1")}
    values = {c: r["value"] for c, r in records.items()}
    choice = json.loads((folder / "reading/reading.json").read_text())
    assert choice["chosen"] == max(values, key=values.get) == "rank16", values
    best = json.loads((folder / "best_params.json").read_text())
    assert best["params"]["rank"] == 16 and best["trials"][0]["value"] == values["rank16"]
    assert "the chosen candidate's fit is this trial: reused" in (
        repo / "logs/tune/tiny/SVD.log").read_text()
    run = repo / "results/runs/sel"
    assert "SVD's reading of the paper's open points" in (run / "table2.md").read_text()
    assert "`rank16` (validation NDCG@10" in (run / "table2.md").read_text()
    csv = pd.read_csv(run / "table2.csv", keep_default_na=False)
    assert set(csv[csv.model == "SVD"].reading) == {"rank16"} and set(
        csv[csv.model == "PopRnd"].reading) == {""}
    assert "| **rank16**" in (run / "reading_selection.md").read_text()

    # nothing changed: nothing planned
    assert "Nothing to be done" in output(snakemake(repo, "-n", "--cores", "2", *targets, *conf))
    # a losing candidate changed: its job and the selection rerun, the choice stays, so neither
    # the study nor any fit reruns (only the reports that name the choice)
    SELECTING["models"]["SVD"]["readings"]["candidates"]["rank1"] = {"rank": 1, "scaling": 0.5}
    (repo / "config" / "sel.yaml").write_text(yaml.safe_dump(SELECTING))
    out = output(snakemake(repo, "--cores", "2", *targets, *conf))
    assert json.loads((folder / "reading/reading.json").read_text())["chosen"] == "rank16"
    ran = jobs_run(out)
    assert ran.get("reading_fit") == 1 and ran.get("select_reading") == 1, out
    assert not {"tune", "train", "evaluate"} & set(ran), out
    assert best == json.loads((folder / "best_params.json").read_text())
    assert "Nothing to be done" in output(snakemake(repo, "-n", "--cores", "2", *targets, *conf))
    # a new winner (rank 3 validates 19.8 % against rank 16's 19.1 % on this log): the study,
    # the fit and the reports follow it, in the same run
    SELECTING["models"]["SVD"]["readings"]["candidates"]["rank3"] = {"rank": 3}
    (repo / "config" / "sel.yaml").write_text(yaml.safe_dump(SELECTING))
    out = output(snakemake(repo, "--cores", "2", *targets, *conf))
    assert json.loads((folder / "reading/reading.json").read_text())["chosen"] == "rank3"
    ran = jobs_run(out)
    assert ran["reading_fit"] == 1 and ran["tune"] == 1 and ran["train"] == 1, out
    assert json.loads((folder / "best_params.json").read_text())["params"]["rank"] == 3
    assert "`rank3` (validation NDCG@10" in (run / "table2.md").read_text()
    assert "Nothing to be done" in output(snakemake(repo, "-n", "--cores", "2", *targets, *conf))
