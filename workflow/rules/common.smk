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

from snakemake.logging import logger

from snakemake.exceptions import IncompleteCheckpointException

from recbench.protocol import config as cfg
from recbench.protocol import reading_selection, studies

# Every rule's params pass through canonical(): mappings with their keys sorted at every depth
# (a params function wrapped so that its value is), since Snakemake reruns a job whose params'
# text changed, and a dict's text lists its keys in the config's order. A config whose keys
# are merely reordered reruns nothing (recbench/canonical.py).
from recbench.canonical import canonical, model_order
from recbench.data.sources import PARSE_KEYS, RAW_KEYS, source_of
from recbench.errors import ConfigError
from recbench.provenance import file_fingerprint, usable_cores

# --config values typed by the schema (Snakemake passes seeds=[0] as ['0']), the config
# validated (each error names its key, in a few lines) and the schema's defaults filled; then
# what a schema cannot check
SCHEMA = f"{workflow.basedir}/config/schema.yaml"
DEFAULT_CONFIG = f"{workflow.basedir}/config/config.yaml"
cfg.validate(config, workflow.config_settings.overwrite_config, SCHEMA)
cfg.check(config)

# The default run (config/config.yaml unchanged) renders the committed reports under results/;
# any other config renders its own under results/runs/<run>/ (recbench.protocol.config.run_name), so it
# never overwrites them. Per-dataset outputs stay results/<dataset>/... either way.
RUN = cfg.run_name(
    config,
    cfg.load_validated(DEFAULT_CONFIG, SCHEMA),
    workflow.overwrite_configfiles,
    DEFAULT_CONFIG,
)
REPORTS = "results" if RUN is None else f"results/runs/{RUN}"
# the run's name as jobs see it, a tracked run's tag (recbench/tracking.py; `tracking:` changes no
# result, so no job depends on it); every job parses this file again, so it holds on a cluster too
config["tracking"] = {**config.get("tracking", {}), "run": RUN or "default"}
if RUN is not None:
    logger.info(f"Reports of this run ({RUN!r}, not the default config): {REPORTS}/")


def report_path(name):
    """Where a report of this run goes: results/<name> for the default run, else
    results/runs/<run>/<name>. Every report rule takes its output paths from here."""
    return f"{REPORTS}/{name}"


def refuse_default_report(name):
    raise ConfigError(
        f"results/{name} is a report of the default run (config/config.yaml), kept with the "
        f"repository; this run's reports go to {REPORTS}/: ask for {report_path(name)}."
    )


DATASETS = cfg.dataset_names(config, table2_only=True)  # the datasets of Table 2
# the reports' model columns, in the order they render (the paper's first): the config's
# order of the paper's models is no param of theirs
REPORT_MODELS = model_order(list(config["models"]))
SEEDS = config["seeds"]


wildcard_constraints:
    dataset="[A-Za-z0-9][A-Za-z0-9_.-]*",
    model="[A-Za-z0-9][A-Za-z0-9_+.~=-]*",  # ~key=value: an ablation variant
    seed="[0-9]+",


def dataset_spec(wildcards):
    return cfg.dataset_spec(config, wildcards.dataset)


def spec_keys(keys):
    """A params function: the dataset entry's keys that decide a job's output, so that a change
    elsewhere in the entry (model_params, split, ...) does not download or parse again."""
    return lambda wc: {k: v for k, v in dataset_spec(wc).items() if k in keys}


def raw_path(dataset):
    """The raw file of a dataset: the user's own file (which must exist: a dry run fails on a
    missing one), or what the fetch rule writes."""
    dataset = cfg.prepared_name(config, dataset)
    spec = cfg.dataset_spec(config, dataset)
    source = source_of(dataset, spec)
    if source.name == "custom":
        return cfg.custom_file(config, dataset)
    name = source.remote(spec).filename if source.remote else "synthetic.parquet"
    return f"data/raw/{dataset}/{name}"


def raw_input(wildcards):
    return raw_path(wildcards.dataset)


def raw_provenance(wildcards):
    """A custom file's resolved path, size and modification time, a param of prepare: a changed
    `path:` or a changed file (even one older than the prepared log) re-prepares the dataset and
    everything downstream, through Snakemake's params trigger. None for a downloaded or generated
    file, which the workflow itself writes."""
    spec = dataset_spec(wildcards)
    if source_of(wildcards.dataset, spec).name != "custom":
        return None
    return file_fingerprint(raw_path(wildcards.dataset))


def validation_files(dataset):
    """The split files of a job that must not see the test users (no test.parquet)."""
    return [f for f in split_files(dataset) if os.path.basename(f) != "test.parquet"]


def reading_candidates(model):
    """name -> overrides of a model's reading candidates (in order); {} without selection."""
    return reading_selection.selection(config, model) or {}


def candidate_folders(dataset, model):
    return [f"results/{dataset}/{model}/readings/{c}" for c in reading_candidates(model)]


def selection_folder(dataset, model):
    return f"results/{dataset}/{model}/reading"


def reading_input(wildcards):
    """The reading selection a model's tuning study starts from: `ancient`, so that a rerun
    selection that keeps its choice reruns no study; the choice itself is a param
    (reading_choice)."""
    if not reading_candidates(wildcards.model):
        return []
    return [ancient(selection_folder(wildcards.dataset, wildcards.model))]


def reading_choice(wildcards):
    """The chosen reading (name, overrides, validation score) as a param of the tuning study:
    a changed choice reruns it. Read through the checkpoint once the selection has run in this
    invocation; before that, the choice already on disk (none: the study waits for it)."""
    if not reading_candidates(wildcards.model):
        return None
    try:
        folder = checkpoints.select_reading.get(**wildcards).output[0]
    except IncompleteCheckpointException:
        folder = selection_folder(wildcards.dataset, wildcards.model)
        if not os.path.exists(os.path.join(folder, reading_selection.CHOICE)):
            raise
    return reading_selection.choice_param(folder)


def selection_folders(datasets):
    """The reading selections of the models of ``datasets`` that select one (the reports name
    each choice)."""
    return [
        selection_folder(d, m)
        for d in datasets
        for m in cfg.model_names(config, d)
        if reading_candidates(m)
    ]


def study_selections(name):
    """The reading selections a study's points start from (its base's, on its datasets)."""
    base = studies.study(config, name)["base"]
    if not reading_candidates(base):
        return []
    return [selection_folder(d, base) for d in studies.study_datasets(config, name)]


def all_selections():
    """Every reading selection of this run: Table 2's datasets, Table 3's, the studies'."""
    folders = selection_folders(DATASETS)
    if config.get("table3"):
        folders += selection_folders(list(cfg.table3(config)["datasets"].values()))
    for name in config.get("studies") or {}:
        folders += study_selections(name)
    return list(dict.fromkeys(folders))


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
MACHINE_CORES = usable_cores()
if workflow.local_exec and "cpu_threads" not in workflow.global_resources:
    workflow.register_resource("cpu_threads", MACHINE_CORES)


def cpu_threads(wildcards, threads):
    return min(threads, MACHINE_CORES)


def long_first(wildcards):
    """Job priority: the neural models' studies and fits take minutes where the others take
    seconds, so they start first and the short jobs fill the cores at the end."""
    return 1 if cfg.model_uses_gpu(config, wildcards.model) else 0


def model_output(path):
    """A final fit's saved model: kept, or with `save_models: false` removed once evaluated."""
    return directory(path) if config["save_models"] else temp(directory(path))


def tuning_evaluation(wildcards):
    """The evaluation settings a tuning study selects with (not `ks`: it selects on NDCG@10)."""
    return {k: v for k, v in config["evaluation"].items() if k != "ks"}


def gpu_count(wildcards):
    return 1 if cfg.model_uses_gpu(config, wildcards.model) and config["device"] != "cpu" else 0


PAPER_NAMES = {d: s.get("paper_name") for d, s in config["datasets"].items()}


def study_points(name):
    """dataset -> [(label, swept values)] of an ablation study (recbench/protocol/studies.py)."""
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
    """dataset -> [{name, label, overrides}] of a study of named variants (recbench/protocol/studies.py)."""
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
    evaluate = [f.replace("benchmarks/train/", "benchmarks/evaluate/") for f in train]
    return (
        train
        + evaluate
        + expand("logs/benchmarks/tune/{dataset}/{model}.tsv", dataset=dataset, model=models)
    )


def prepared_files(dataset):
    """The canonical log a dataset splits and prepare's report of its rows: its own, or those of
    its ``prepared_from:`` dataset."""
    name = cfg.prepared_name(config, dataset)
    return {"log": f"data/prepared/{name}.parquet", "report": f"data/prepared/{name}.json"}


def prepared_input(wildcards):
    return prepared_files(wildcards.dataset)


def dataset_files(dataset):
    """The raw and prepared files of a dataset, for the manifest's checksums."""
    return [raw_path(dataset), prepared_files(dataset)["log"]]


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


# Before any job (Snakemake calls it once the DAG is built, never in a dry run): what training
# each (dataset, model) needs against this machine's memory, printed to the log
# (recbench/protocol/memory_check.py). A local run where one cannot fit stops here, saying what
# would fit; on a cluster each job checks again on its own node when it starts.
onstart:
    from recbench.protocol import memory_check

    memory_check.before_jobs(config, logger, local=workflow.local_exec)
