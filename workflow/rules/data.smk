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
        spec=canonical(spec_keys(RAW_KEYS)),
    script:
        "../scripts/fetch_raw.py"


rule prepare:
    """Parse the raw file once into the canonical parquet (user, item, timestamp), every row
    accounted for (report: rows read, invalid, dropped, duplicate); verify counts."""
    input:
        raw_input,
    output:
        log="data/prepared/{dataset}.parquet",
        report="data/prepared/{dataset}.json",
    log:
        "logs/prepare/{dataset}.log",
    benchmark:
        "logs/benchmarks/prepare/{dataset}.tsv"
    conda:
        "../../environment.yml"
    params:
        spec=canonical(spec_keys(PARSE_KEYS)),
        # a custom file's path, size and mtime: a changed file re-prepares, even an older one
        raw=canonical(raw_provenance),
    script:
        "../scripts/prepare.py"


rule split:
    """Split by the dataset's protocol (global temporal, or LOOM's leave-one-out); items and
    users indexed on the training part."""
    input:
        unpack(prepared_input),
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
        split=canonical(lambda wc: cfg.split_config(config, wc.dataset)),
    script:
        "../scripts/split.py"
