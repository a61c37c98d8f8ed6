# TikTalk reproduction pipeline (arXiv 2301.05880).
#
#   snakemake --cores all                       # embedded demo (config/config.yaml)
#   snakemake --cores all --configfile config/tiktalk.yaml
#   snakemake --profile slurm all               # on a SLURM cluster (slurm/config.yaml)
#
# All logic lives in the `tiktalk` package (src/tiktalk); rules and scripts stay thin.

import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# The package's source must be importable by the DAG code here and by every job, including
# jobs running in the per-rule conda envs (`--sdm conda`), which do not install it.
_SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SRC)

from tiktalk.config_check import dump_effective_config, workflow_config_problems
from tiktalk.weights.spec import set_offline_environment
from tiktalk.workflow import canonicalise_config, export_pythonpath

export_pythonpath(_SRC)

# A config file given on the command line (or by a profile: slurm/config.yaml names
# config/tiktalk.yaml) REPLACES the demo default instead of being deep-merged into it, so a
# paper run never inherits a demo value for a key its file leaves out. Several files still
# merge in the order given (an overlay after config/tiktalk.yaml), and `--config k=v` applies
# on top. SLURM jobs receive the same files (`--configfiles`), so they see the same config.
if not workflow.overwrite_configfiles:

    configfile: str(Path(workflow.basedir) / "config" / "config.yaml")


# Every key of every block is checked now, before any rule exists: one line per problem,
# naming its path and the closest known key (config/schema.yaml, tiktalk.config_check).
_problems = workflow_config_problems(config, Path(workflow.basedir) / "config" / "schema.yaml")
if _problems:
    sys.exit("\n".join(f"config error: {line}" for line in _problems))
# key order is not a change: only values decide whether a stage's params changed
canonicalise_config(config)
# no job reaches the Hugging Face hub: weights come from weights/ (rules/weights.smk)
set_offline_environment()
# TIKTALK_DUMP_CONFIG=out.json: write the config the jobs see (debugging, tests)
dump_effective_config(config, os.environ.get("TIKTALK_DUMP_CONFIG"))


include: "rules/common.smk"
include: "rules/weights.smk"
include: "rules/data.smk"
include: "rules/media.smk"
include: "rules/knowledge.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"  # with the onerror handler (partial Table 3 after failed jobs)
include: "rules/human_eval.smk"
include: "rules/paper_tables.smk"  # Tables 2, 5, 6, 7, ranking, Figure 4 cases


report: "workflow/report/workflow.rst"


rule all:
    input:
        all_outputs,
    default_target: True
