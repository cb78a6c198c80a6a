# Aggregation over seeds and the rendered tables.


if RUN is not None:

    rule refuse_default_report:
        """A default-run report (results/<file>) asked of another config: refused when the jobs
        are planned, with the path where this run's report goes."""
        input:
            lambda wc: refuse_default_report(wc.report),
        output:
            "results/{report}",
        log:
            "logs/report/refused/{report}.log",
        wildcard_constraints:
            report="[^/]+|figures/[^/]+",
        localrule: True
        run:
            raise AssertionError("unreachable: the input function refuses")


rule table2:
    """Table 2: mean ± 95% CI over seeds for every dataset and model, beside the paper's numbers."""
    input:
        metrics=[f for d in DATASETS for f in metrics_files(d)],
        per_user=[
            f.replace("metrics.json", "per_user.parquet")
            for d in DATASETS
            for f in metrics_files(d)
        ],
        summaries=expand("results/{dataset}/split_summary.json", dataset=DATASETS),
    output:
        md=report(report_path("table2.md"), caption="../report/table2.rst", category="Tables"),
        csv=report_path("table2.csv"),
    log:
        "logs/report/table2.log",
    benchmark:
        "logs/benchmarks/report/table2.tsv"
    conda:
        "../../environment.yml"
    params:
        datasets=DATASETS,
        models=list(config["models"]),
        paper_names=PAPER_NAMES,
        significance=config["significance"],
        evaluation=config["evaluation"],
    script:
        "../scripts/table2.py"


rule reproduction:
    """Every Table 2 cell beside the paper's: is the paper's value inside our interval?"""
    input:
        csv=report_path("table2.csv"),
    output:
        md=report(
            report_path("reproduction.md"),
            caption="../report/reproduction.rst",
            category="Tables",
        ),
    log:
        "logs/report/reproduction.log",
    benchmark:
        "logs/benchmarks/report/reproduction.tsv"
    conda:
        "../../environment.yml"
    params:
        datasets=DATASETS,
        models=list(config["models"]),
    script:
        "../scripts/reproduction.py"


rule study_table:
    """Tables 4 and 5: the ablation points of a study, each trained by its own jobs."""
    input:
        metrics=lambda wc: study_metrics(wc.table),
    output:
        md=report(report_path("{table}.md"), caption="../report/study_table.rst", category="Tables"),
        csv=report_path("{table}.csv"),
    log:
        "logs/report/{table}.log",
    benchmark:
        "logs/benchmarks/report/{table}.tsv"
    wildcard_constraints:
        table="table4|table5",
    conda:
        "../../environment.yml"
    params:
        points=lambda wc: study_points(wc.table),
        paper_names=PAPER_NAMES,
    script:
        "../scripts/study_table.py"


rule figure:
    """Figures 2-5: a PNG and the CSV of the values it plots."""
    input:
        metrics=lambda wc: study_metrics(wc.figure),
        # Figure 2 plots the best tuning trial's curves (the only run that validates every
        # epoch): each base study's folder, which holds the history best_params.json names
        studies=lambda wc: fig2_studies(wc.figure, "tuning"),
        best=lambda wc: fig2_studies(wc.figure, "best_params.json"),
    output:
        png=report(
            report_path("figures/{figure}.png"),
            caption="../report/figure.rst",
            category="Figures",
        ),
        csv=report_path("figures/{figure}.csv"),
    log:
        "logs/report/{figure}.log",
    benchmark:
        "logs/benchmarks/report/{figure}.tsv"
    wildcard_constraints:
        figure="fig2_training_curves|fig3_graph_size|fig4_warmup|fig5_barlow_weight",
    conda:
        "../../environment.yml"
    params:
        points=lambda wc: study_points(wc.figure),
        warmup=lambda wc: {
            d: cfg.model_spec(config, d, studies.study(config, wc.figure)["base"])[1].get(
                "warmup_epochs", 0
            )
            for d in studies.study_datasets(config, wc.figure)
        },
        paper_names=PAPER_NAMES,
    script:
        "../scripts/figure.py"


rule manifest:
    """Provenance: commit, config hash, dataset checksums, packages, device, wall time per job."""
    input:
        metrics=[f for d in DATASETS for f in metrics_files(d)],
        datasets=[f for d in DATASETS for f in dataset_files(d)],
        prepared=[prepared_files(d)["report"] for d in DATASETS],
        benchmarks=[f for d in DATASETS for f in job_benchmarks(d)],
    output:
        report(
            report_path("manifest.json"), caption="../report/manifest.rst", category="Provenance"
        ),
    log:
        "logs/report/manifest.log",
    conda:
        "../../environment.yml"
    params:
        datasets={d: dataset_files(d) for d in DATASETS},
        prepared={d: prepared_files(d)["report"] for d in DATASETS},
    script:
        "../scripts/manifest.py"


rule table3:
    """Table 3: SASRec and CREATE in the LOOM protocol, beside the quoted LOOM, GSAU, Self-GNN."""
    input:
        metrics=lambda wc: table3_metrics(),
    output:
        md=report(report_path("table3.md"), caption="../report/table3.rst", category="Tables"),
        csv=report_path("table3.csv"),
    log:
        "logs/report/table3.log",
    benchmark:
        "logs/benchmarks/report/table3.tsv"
    conda:
        "../../environment.yml"
    params:
        table3=lambda wc: cfg.table3(config),
    script:
        "../scripts/table3.py"
