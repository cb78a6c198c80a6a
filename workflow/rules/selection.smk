# The protocol's first step for a model with `readings: {select: validation, candidates: ...}`
# (CREATE): its reading chosen on each dataset's validation split (recbench/protocol/reading_selection.py)
# -> reading_fit per candidate -> select_reading -> the model's tune (rule tune) as usual.


rule reading_fit:
    """One reading candidate: one fit on the validation split at the tuning budget, the tuning
    seed, early stopping on validation NDCG@10 (a tuning study's trial 0). No test file."""
    input:
        split=validation_files("{dataset}"),
    output:
        directory("results/{dataset}/{model}/readings/{candidate}"),
    log:
        "logs/reading_fit/{dataset}/{model}/{candidate}.log",
    benchmark:
        "logs/benchmarks/reading_fit/{dataset}/{model}/{candidate}.tsv"
    wildcard_constraints:
        candidate="[A-Za-z0-9][A-Za-z0-9_.-]*",
    priority: long_first
    conda:
        "../../environment.yml"
    threads: config["threads"]
    resources:
        gpu=gpu_count,
        cpu_threads=cpu_threads,
    params:
        spec=canonical(lambda wc: cfg.candidate_spec(config, wc.dataset, wc.model, wc.candidate)),
        overrides=canonical(lambda wc: reading_candidates(wc.model)[wc.candidate]),
        seed=config["tuning"]["seed"],
        device=config["device"],
        evaluation=canonical(tuning_evaluation),
        # the fit's folder until it is complete; its checkpoint survives a killed job
        partial="results/{dataset}/{model}/readings/{candidate}.partial",
    script:
        "../scripts/reading_fit.py"


checkpoint select_reading:
    """The candidate with the best validation NDCG@10 (ties: the first in the config). Its inputs
    are the candidates' records: no test data can reach the choice. A checkpoint, so that the
    tuning study reruns exactly when the choice changes (recbench/protocol/reading_selection.py)."""
    input:
        candidates=lambda wc: candidate_folders(wc.dataset, wc.model),
    output:
        directory("results/{dataset}/{model}/reading"),
    log:
        "logs/select_reading/{dataset}/{model}.log",
    # the model's study and fits wait for it: it starts as soon as its candidates are done
    priority: long_first
    conda:
        "../../environment.yml"
    params:
        # their order breaks ties: reordering them selects again
        candidates=lambda wc: list(reading_candidates(wc.model)),
        evaluation=canonical(tuning_evaluation),
    script:
        "../scripts/select_reading.py"
