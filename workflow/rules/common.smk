# Helpers shared by the rules: dataset and model lists, input functions, resources.
from recbench import config as cfg
from recbench.data.sources import source_of


cfg.check(config)

DATASETS = cfg.dataset_names(config)
SEEDS = config["seeds"]


wildcard_constraints:
    dataset="[A-Za-z0-9][A-Za-z0-9_.-]*",
    model="[A-Za-z0-9][A-Za-z0-9_+.-]*",
    seed="[0-9]+",


def dataset_spec(wildcards):
    return cfg.dataset_spec(config, wildcards.dataset)


def raw_input(wildcards):
    """The raw file of a dataset: the user's own file, or what the fetch rule writes."""
    spec = dataset_spec(wildcards)
    source = source_of(wildcards.dataset, spec)
    if source.name == "custom":
        return spec["path"]
    name = source.remote(spec).filename if source.remote else "synthetic.parquet"
    return f"data/raw/{wildcards.dataset}/{name}"


def split_files(dataset):
    return multiext(f"data/split/{dataset}/", "train.parquet", "test.parquet", "valid.parquet",
                    "items.parquet", "users.parquet", "meta.json")


def metrics_files(dataset):
    return expand("results/{dataset}/{model}/seed{seed}/metrics.json", dataset=dataset,
                  model=cfg.model_names(config, dataset), seed=SEEDS)


def gpu_count(wildcards):
    return 1 if cfg.model_uses_gpu(config, wildcards.model) and config["device"] != "cpu" else 0
