# Raw data -> canonical log -> split.


rule fetch_raw:
    """Download and verify a dataset's raw file, or generate the embedded synthetic log."""
    output:
        "data/raw/{dataset}/{filename}",
    log:
        "logs/fetch_raw/{dataset}/{filename}.log",
    benchmark:
        "logs/benchmarks/fetch_raw/{dataset}/{filename}.tsv"
    conda:
        "../../environment.yml"
    resources:
        network=1,
    params:
        spec=dataset_spec,
    script:
        "../scripts/fetch_raw.py"


rule prepare:
    """Parse the raw file once into the canonical parquet (user, item, timestamp); verify counts."""
    input:
        raw_input,
    output:
        "data/prepared/{dataset}.parquet",
    log:
        "logs/prepare/{dataset}.log",
    benchmark:
        "logs/benchmarks/prepare/{dataset}.tsv"
    conda:
        "../../environment.yml"
    params:
        spec=dataset_spec,
    script:
        "../scripts/prepare.py"


rule split:
    """Split by the dataset's protocol (global temporal, or LOOM's leave-one-out); items and
    users indexed on the training part."""
    input:
        prepared_input,
    output:
        split_files("{dataset}"),
        summary="results/{dataset}/split_summary.json",
    log:
        "logs/split/{dataset}.log",
    benchmark:
        "logs/benchmarks/split/{dataset}.tsv"
    conda:
        "../../environment.yml"
    params:
        split=lambda wc: cfg.split_config(config, wc.dataset),
    script:
        "../scripts/split.py"
