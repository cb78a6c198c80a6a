# create-bench: every table and figure of CREATE (arXiv 2602.23471) from one command.
#   snakemake --cores 8 results/table2.md                        (embedded default data)
#   snakemake --cores 8 results/runs/paper/table2.md --configfile config/paper.yaml
#                                          (the paper's datasets; any config other than the
#                                           default one reports under results/runs/<run>/)
from snakemake.utils import min_version

min_version("8.10")


# The default config applies unless a --configfile (or a profile's configfile) replaces it: a
# paper run must not inherit the embedded dataset or the default models. --config key=value and a
# profile's `config:` layer on top of whichever config is in use.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


# first: the config typed and validated against config/schema.yaml, the reports' folder
include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/selection.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        report_path("table2.md"),
        report_path("reproduction.md"),
        report_path("manifest.json"),
