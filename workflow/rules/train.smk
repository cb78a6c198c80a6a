# One job per (dataset, model, seed): fit on the training part, evaluate on the test users.


rule train_evaluate:
    input:
        split_files("{dataset}"),
    output:
        metrics="results/{dataset}/{model}/seed{seed}/metrics.json",
        per_user="results/{dataset}/{model}/seed{seed}/per_user.parquet",
    params:
        spec=lambda wc: cfg.model_spec(config, wc.dataset, wc.model),
        device=config["device"],
        evaluation=config["evaluation"],
    conda:
        "../../environment.yml"
    log:
        "logs/train/{dataset}/{model}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/train/{dataset}/{model}/seed{seed}.tsv"
    threads: 2
    resources:
        gpu=gpu_count,
    script:
        "../scripts/train_evaluate.py"
