# The paper's protocol (Section 4.2), one job per step:
#   tune_trial k (k = 0 .. trials-1, each after the previous) -> best_params -> train_evaluate per seed


rule tune_trial:
    """One Optuna trial: fit before T_valid, score the validation users (trial 0: the defaults)."""
    input:
        split=split_files("{dataset}"),
        previous=previous_trial,
        base=base_best_params,
    output:
        "results/{dataset}/{model}/tuning/trial{trial}.json",
    params:
        spec=lambda wc: cfg.model_spec(config, wc.dataset, wc.model),
        search=lambda wc: cfg.model_search(config, wc.model),
        overrides=lambda wc: studies.parse_label(wc.model)[1],
        tuning=config["tuning"],
        device=config["device"],
        evaluation=config["evaluation"],
    conda:
        "../../environment.yml"
    log:
        "logs/tune/{dataset}/{model}/trial{trial}.log",
    benchmark:
        "logs/benchmarks/tune/{dataset}/{model}/trial{trial}.tsv"
    threads: config["threads"]
    resources:
        gpu=gpu_count,
    script:
        "../scripts/tune_trial.py"


rule best_params:
    """The best trial's parameters and epoch count: results/<dataset>/<model>/best_params.json."""
    input:
        trial_files,
    output:
        "results/{dataset}/{model}/best_params.json",
    params:
        spec=lambda wc: cfg.model_spec(config, wc.dataset, wc.model),
    conda:
        "../../environment.yml"
    log:
        "logs/tune/{dataset}/{model}/best_params.log",
    benchmark:
        "logs/benchmarks/tune/{dataset}/{model}/best_params.tsv"
    script:
        "../scripts/best_params.py"


rule train_evaluate:
    """One seed: fit the best parameters on the whole training part, evaluate the test users."""
    input:
        split=split_files("{dataset}"),
        best="results/{dataset}/{model}/best_params.json",
    output:
        metrics="results/{dataset}/{model}/seed{seed}/metrics.json",
        per_user="results/{dataset}/{model}/seed{seed}/per_user.parquet",
    params:
        device=config["device"],
        evaluation=config["evaluation"],
    conda:
        "../../environment.yml"
    log:
        "logs/train/{dataset}/{model}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/train/{dataset}/{model}/seed{seed}.tsv"
    threads: config["threads"]
    resources:
        gpu=gpu_count,
    script:
        "../scripts/train_evaluate.py"
