# Helpers shared by the rules: dataset and model lists, input functions, resources.
import os
import sys

# This workflow and every job import this checkout's packages (recbench, baselines,
# create_model) first, in whatever Python runs them: the environment you run Snakemake in, a
# conda env Snakemake built from environment.yml (--sdm conda), or the container image of a
# cluster profile. The project needs no install there, and an installed copy of another
# checkout never shadows the code whose changes Snakemake's code trigger sees.
sys.path.insert(0, workflow.basedir)
os.environ.update(
    PYTHONPATH=os.pathsep.join([workflow.basedir, *filter(None, [os.environ.get("PYTHONPATH")])])
)

from recbench import config as cfg
from recbench import studies
from recbench.data.sources import source_of

cfg.check(config)

DATASETS = cfg.dataset_names(config, table2_only=True)  # the datasets of Table 2
SEEDS = config["seeds"]


wildcard_constraints:
    dataset="[A-Za-z0-9][A-Za-z0-9_.-]*",
    model="[A-Za-z0-9][A-Za-z0-9_+.~=-]*",  # ~key=value: an ablation variant
    seed="[0-9]+",


def dataset_spec(wildcards):
    return cfg.dataset_spec(config, wildcards.dataset)


def raw_path(dataset):
    """The raw file of a dataset: the user's own file, or what the fetch rule writes."""
    dataset = cfg.prepared_name(config, dataset)
    spec = cfg.dataset_spec(config, dataset)
    source = source_of(dataset, spec)
    if source.name == "custom":
        return spec["path"]
    name = source.remote(spec).filename if source.remote else "synthetic.parquet"
    return f"data/raw/{dataset}/{name}"


def raw_input(wildcards):
    return raw_path(wildcards.dataset)


def split_files(dataset):
    return multiext(
        f"data/split/{dataset}/",
        "train.parquet",
        "test.parquet",
        "valid.parquet",
        "items.parquet",
        "users.parquet",
        "meta.json",
    )


def metrics_files(dataset):
    return expand(
        "results/{dataset}/{model}/seed{seed}/metrics.json",
        dataset=dataset,
        model=cfg.model_names(config, dataset),
        seed=SEEDS,
    )


def per_user_of(metrics):
    """The per_user.parquet beside each metrics.json (the test-user noise of the verdicts)."""
    return [f.replace("metrics.json", "per_user.parquet") for f in metrics]


# Tuning and training jobs never run more threads at once than this machine has cores, whatever
# --cores says (8 single-thread jobs on 2 cores thrash and start the long studies late): each
# declares its threads as the resource cpu_threads, limited to the cores this process may use.
# Only for local runs (a cluster runs jobs on other machines); --resources cpu_threads=N overrides.
MACHINE_CORES = (
    len(os.sched_getaffinity(0))
    if hasattr(os, "sched_getaffinity")  # not on macOS
    else os.cpu_count()
)
if workflow.local_exec and "cpu_threads" not in workflow.global_resources:
    workflow.register_resource("cpu_threads", MACHINE_CORES)


def cpu_threads(wildcards, threads):
    return min(threads, MACHINE_CORES)


def long_first(wildcards):
    """Job priority: the neural models' studies and fits take minutes where the others take
    seconds, so they start first and the short jobs fill the cores at the end."""
    return 1 if cfg.model_uses_gpu(config, wildcards.model) else 0


def gpu_count(wildcards):
    return 1 if cfg.model_uses_gpu(config, wildcards.model) and config["device"] != "cpu" else 0


PAPER_NAMES = {d: s.get("paper_name") for d, s in config["datasets"].items()}


def study_points(name):
    """dataset -> [(label, swept values)] of an ablation study (recbench/studies.py)."""
    return {
        d: [(p.label, p.values) for p in cfg.study_points(config, name, d)]
        for d in studies.study_datasets(config, name)
    }


def study_files(name, leaf="metrics.json"):
    """Every (dataset, point, seed) file ``leaf`` of a study (metrics.json: one training job each)."""
    files = [
        f"results/{d}/{label}/seed{s}/{leaf}"
        for d, pts in study_points(name).items()
        for label, _ in pts
        for s in studies.study_seeds(config, name)
    ]
    return list(dict.fromkeys(files))  # two points of one label are one job


def named_points(name):
    """dataset -> [{name, label, overrides}] of a study of named variants (recbench/studies.py)."""
    return {
        d: [
            {"name": p.name, "label": p.label, "overrides": p.values}
            for p in cfg.study_points(config, name, d)
        ]
        for d in studies.study_datasets(config, name)
    }


def study_best_params(name):
    """The best_params.json of every (dataset, point) of a study: its tuning job."""
    return list(
        dict.fromkeys(
            f"results/{d}/{label}/best_params.json"
            for d, pts in study_points(name).items()
            for label, _ in pts
        )
    )


def fig2_studies(figure, name):
    """Figure 2's inputs: ``name`` (the study folder or best_params.json) of its base per dataset."""
    if figure != "fig2_training_curves":
        return []
    return [f"results/{d}/{pts[0][0]}/{name}" for d, pts in study_points(figure).items()]


def base_best_params(wildcards):
    """An ablation variant starts from its base label's tuned parameters."""
    base, overrides = studies.parse_label(wildcards.model)
    return [f"results/{wildcards.dataset}/{base}/best_params.json"] if overrides else []


def job_benchmarks(dataset):
    """Snakemake's benchmark files of a dataset's tuning and training jobs (wall time, memory)."""
    models = cfg.model_names(config, dataset)
    train = expand(
        "logs/benchmarks/train/{dataset}/{model}/seed{seed}.tsv",
        dataset=dataset,
        model=models,
        seed=SEEDS,
    )
    return train + expand(
        "logs/benchmarks/tune/{dataset}/{model}.tsv", dataset=dataset, model=models
    )


def prepared_input(wildcards):
    """The canonical log a dataset splits: its own, or that of its ``prepared_from:`` dataset."""
    return f"data/prepared/{cfg.prepared_name(config, wildcards.dataset)}.parquet"


def dataset_files(dataset):
    """The raw and prepared files of a dataset, for the manifest's checksums."""
    return [raw_path(dataset), f"data/prepared/{cfg.prepared_name(config, dataset)}.parquet"]


def table3_metrics():
    """Table 3's models on its LOOM-protocol datasets, and SASRec on the bridge datasets."""
    t3 = cfg.table3(config)
    files = expand(
        "results/{dataset}/{model}/seed{seed}/metrics.json",
        dataset=list(t3["datasets"].values()),
        model=t3["models"],
        seed=SEEDS,
    )
    return files + expand(
        "results/{dataset}/SASRec/seed{seed}/metrics.json",
        dataset=list(t3.get("bridge", {}).values()),
        seed=SEEDS,
    )
