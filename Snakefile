# create-bench: every table and figure of CREATE (arXiv 2602.23471) from one command.
#   snakemake --cores 8 results/table2.md                               (embedded default data)
#   snakemake --cores 8 --configfile config/paper.yaml results/table2.md (the paper's datasets)
from snakemake.utils import min_version, validate

min_version("8.10")


# The default config applies unless a --configfile (or a profile's configfile) replaces it: a
# paper run must not inherit the embedded dataset or the default models. --config key=value and a
# profile's `config:` layer on top of whichever config is in use.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        "results/table2.md",
        "results/reproduction.md",
        "results/manifest.json",
