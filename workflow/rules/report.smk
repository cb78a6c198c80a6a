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
        per_user=per_user_of([f for d in DATASETS for f in metrics_files(d)]),
        summaries=expand("results/{dataset}/split_summary.json", dataset=DATASETS),
        # the readings chosen on validation (rule select_reading), which the caption names
        selections=selection_folders(DATASETS),
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
        models=REPORT_MODELS,
        paper_names=canonical(PAPER_NAMES),
        significance=canonical(config["significance"]),
        evaluation=canonical(config["evaluation"]),
        reproduction=canonical(config["reproduction"]),
    script:
        "../scripts/table2.py"


rule reproduction:
    """Every Table 2 cell's verdict against the paper's, the paper's claims as claims, and the
    test users and seeds needed to detect its Gain."""
    input:
        csv=report_path("table2.csv"),
        per_user=per_user_of([f for d in DATASETS for f in metrics_files(d)]),
        selections=selection_folders(DATASETS),
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
        models=REPORT_MODELS,
        paper_names=canonical(PAPER_NAMES),
        reproduction=canonical(config["reproduction"]),
    script:
        "../scripts/reproduction.py"


rule study_table:
    """Tables 4 and 5: the ablation points of a study, each trained by its own jobs."""
    input:
        metrics=lambda wc: study_files(wc.table),
        per_user=lambda wc: study_files(wc.table, "per_user.parquet"),
        selections=lambda wc: study_selections(wc.table),
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
        # (dataset, points) pairs: the study's `datasets:` list order is the tables' row order
        points=canonical(lambda wc: list(study_points(wc.table).items())),
        paper_names=canonical(PAPER_NAMES),
        reproduction=canonical(config["reproduction"]),
    script:
        "../scripts/study_table.py"


rule figure:
    """Figures 2-5: a PNG and the CSV of the values it plots."""
    input:
        metrics=lambda wc: study_files(wc.figure),
        per_user=lambda wc: study_files(wc.figure, "per_user.parquet"),
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
        points=canonical(lambda wc: list(study_points(wc.figure).items())),
        paper_names=canonical(PAPER_NAMES),
        reproduction=canonical(config["reproduction"]),
    script:
        "../scripts/figure.py"


rule manifest:
    """Provenance: commit, config hash, dataset checksums, packages, device, wall time per job."""
    input:
        metrics=[f for d in DATASETS for f in metrics_files(d)],
        datasets=[f for d in DATASETS for f in dataset_files(d)],
        prepared=[prepared_files(d)["report"] for d in DATASETS],
        benchmarks=[f for d in DATASETS for f in job_benchmarks(d)],
        selections=selection_folders(DATASETS),
    output:
        report(
            report_path("manifest.json"), caption="../report/manifest.rst", category="Provenance"
        ),
    log:
        "logs/report/manifest.log",
    conda:
        "../../environment.yml"
    params:
        datasets=canonical({d: dataset_files(d) for d in DATASETS}),
        prepared=canonical({d: prepared_files(d)["report"] for d in DATASETS}),
    script:
        "../scripts/manifest.py"


rule table3:
    """Table 3: SASRec and CREATE in the LOOM protocol, beside the quoted LOOM, GSAU, Self-GNN."""
    input:
        metrics=lambda wc: table3_metrics(),
        per_user=lambda wc: per_user_of(table3_metrics()),
        selections=lambda wc: selection_folders(list(cfg.table3(config)["datasets"].values())),
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
        table3=canonical(lambda wc: cfg.table3(config)),
        reproduction=canonical(config["reproduction"]),
    script:
        "../scripts/table3.py"


rule readings:
    """The readings report: the base (`default`) and each named variant of the readings study,
    each trained by its own jobs, beside the reference (recbench/reporting/readings.py)."""
    input:
        metrics=lambda wc: study_files("readings"),
        per_user=lambda wc: study_files("readings", "per_user.parquet"),
        # the final fits' history.csv (seconds per epoch, epochs trained)
        training=lambda wc: study_files("readings", "training"),
        best=lambda wc: study_best_params("readings"),
        selections=lambda wc: study_selections("readings"),
    output:
        md=report(report_path("readings.md"), caption="../report/readings.rst", category="Tables"),
        csv=report_path("readings.csv"),
        png=report(
            report_path("figures/readings.png"),
            caption="../report/readings.rst",
            category="Figures",
        ),
    log:
        "logs/report/readings.log",
    benchmark:
        "logs/benchmarks/report/readings.tsv"
    conda:
        "../../environment.yml"
    params:
        points=canonical(lambda wc: list(named_points("readings").items())),
        seeds=lambda wc: studies.study_seeds(config, "readings"),
        base=lambda wc: studies.study(config, "readings")["base"],
        significance=canonical(config["significance"]),
        evaluation=canonical(config["evaluation"]),
        paper_names=canonical(PAPER_NAMES),
        reproduction=canonical(config["reproduction"]),
    script:
        "../scripts/readings.py"


rule reading_selection:
    """Every reading candidate of every dataset that selects one: validation NDCG@10 and
    Recall@10, epochs and seconds, the winner marked (recbench/reporting/readings.py)."""
    input:
        selections=lambda wc: all_selections(),
    output:
        md=report(
            report_path("reading_selection.md"),
            caption="../report/reading_selection.rst",
            category="Tables",
        ),
        csv=report_path("reading_selection.csv"),
    log:
        "logs/report/reading_selection.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/reading_selection.py"
