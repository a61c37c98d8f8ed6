"""Rule demo_data: generate the embedded demo release (videos, dialogues, mini C3KG)."""
from pathlib import Path

from tiktalk.demo.generate import generate_demo
from tiktalk.logs import script_logging

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    out_dir = Path(sm.output.c3kg).parent
    summary = generate_demo(out_dir, seed=sm.params.seed, **sm.params.demo)
    log.info("demo: %s", {k: v for k, v in summary.items() if k != "item_types"})
