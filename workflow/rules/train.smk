# The paper's protocol (Section 4.2): [select a reading, selection.smk] -> tune (one job per
# study) -> train per seed (the saved model) -> evaluate per seed (metrics.json)


rule tune:
    """The Optuna study of a (dataset, model): its trials one after another on the validation
    split (trial 0: the defaults), every trial's record and history, and the best parameters."""
    input:
        split=split_files("{dataset}"),
        base=base_best_params,
        reading=reading_input,
    output:
        study=directory("results/{dataset}/{model}/tuning"),
        best="results/{dataset}/{model}/best_params.json",
    log:
        "logs/tune/{dataset}/{model}.log",
    benchmark:
        "logs/benchmarks/tune/{dataset}/{model}.tsv"
    priority: long_first
    conda:
        "../../environment.yml"
    threads: config["threads"]
    resources:
        gpu=gpu_count,
        cpu_threads=cpu_threads,
    params:
        spec=canonical(lambda wc: cfg.model_spec(config, wc.dataset, wc.model)),
        search=canonical(lambda wc: cfg.model_search(config, wc.model)),
        trials=lambda wc: cfg.n_trials(config, wc.model),
        overrides=canonical(lambda wc: cfg.variant_overrides(config, wc.dataset, wc.model)),
        tuning=canonical(config["tuning"]),
        # the reading chosen on validation (rule select_reading), for a model that selects one
        reading=canonical(reading_choice),
        device=config["device"],
        # what the study's validation depends on: `evaluation.ks` is not, so it reruns no study
        evaluation=canonical(tuning_evaluation),
    script:
        "../scripts/tune.py"


rule train:
    """One seed: fit the best parameters on the whole training part and save the model
    (recbench/artefacts.py); with `save_models: false` the model is a temporary file, removed
    once evaluated."""
    input:
        split=split_files("{dataset}"),
        best="results/{dataset}/{model}/best_params.json",
    output:
        model=model_output("results/{dataset}/{model}/seed{seed}/model"),
        # the model's own files: a neural model's history.csv and training.json
        training=directory("results/{dataset}/{model}/seed{seed}/training"),
    log:
        "logs/train/{dataset}/{model}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/train/{dataset}/{model}/seed{seed}.tsv"
    priority: long_first
    conda:
        "../../environment.yml"
    threads: config["threads"]
    resources:
        gpu=gpu_count,
        cpu_threads=cpu_threads,
    params:
        device=config["device"],
        # a neural fit's checkpoint (recbench/checkpoints.py): beside the outputs, undeclared, so
        # that it survives Snakemake's removal of a killed job's outputs; removed at the job's end
        checkpoint="results/{dataset}/{model}/seed{seed}/training.partial",
    script:
        "../scripts/train.py"


rule evaluate:
    """One seed's saved model on the test users: metrics.json and per_user.parquet. Only this
    job reruns when only `evaluation.ks` changes."""
    input:
        split=split_files("{dataset}"),
        model="results/{dataset}/{model}/seed{seed}/model",
    output:
        metrics="results/{dataset}/{model}/seed{seed}/metrics.json",
        per_user="results/{dataset}/{model}/seed{seed}/per_user.parquet",
    log:
        "logs/evaluate/{dataset}/{model}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/evaluate/{dataset}/{model}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: config["threads"]
    resources:
        gpu=gpu_count,
        cpu_threads=cpu_threads,
    params:
        device=config["device"],
        evaluation=canonical(config["evaluation"]),
    script:
        "../scripts/evaluate.py"
