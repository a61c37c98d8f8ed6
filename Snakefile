# TikTalk reproduction pipeline (arXiv 2301.05880).
#
#   snakemake --cores all                       # embedded demo (config/config.yaml)
#   snakemake --cores all --configfile config/tiktalk.yaml
#   snakemake --profile slurm all               # on a SLURM cluster (slurm/config.yaml)
#
# All logic lives in the `tiktalk` package (src/tiktalk); rules and scripts stay thin.

import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

# The package's source must be importable by the DAG code here and by every job, including
# jobs running in the per-rule conda envs (`--sdm conda`), which do not install it.
_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)

from tiktalk.workflow import canonicalise_config, export_pythonpath

export_pythonpath(_SRC)


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")
# key order is not a change: only values decide whether a stage's params changed
canonicalise_config(config)


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/media.smk"
include: "rules/knowledge.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/human_eval.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        all_outputs,
    default_target: True
