# Aggregation over seeds and the rendered tables.


rule table2:
    """Table 2: mean ± 95% CI over seeds for every dataset and model, beside the paper's numbers."""
    input:
        metrics=[f for d in DATASETS for f in metrics_files(d)],
        summaries=expand("results/{dataset}/split_summary.json", dataset=DATASETS),
    output:
        md="results/table2.md",
        csv="results/table2.csv",
    params:
        datasets=DATASETS,
        models=list(config["models"]),
        paper_names={d: s.get("paper_name") for d, s in config["datasets"].items()},
    conda:
        "../../environment.yml"
    log:
        "logs/report/table2.log",
    benchmark:
        "logs/benchmarks/report/table2.tsv"
    script:
        "../scripts/table2.py"
