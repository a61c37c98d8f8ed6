"""Rule demo_item_types: per item type scores of every baseline, and the wiring margins with
their bootstrap intervals (demo wiring check)."""
from tiktalk.io import write_text_atomic
from tiktalk.logs import script_logging
from tiktalk.report.items import write_item_type_table
from tiktalk.report.wiring import ItemScores, Relation, markdown, wiring_table, write_wiring_table

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    predictions = dict(zip(sm.params.baselines, sm.input.predictions))
    table = write_item_type_table(predictions, sm.input.references, sm.input.item_types,
                                  sm.output.csv)
    log.info("per item type:\n%s", table.to_string(index=False))
    relations = [Relation(*r) for r in sm.params.relations]   # the families' (tiktalk.workflow)
    wiring = wiring_table(ItemScores(predictions, sm.input.references, sm.input.item_types),
                          relations)
    write_wiring_table(wiring, sm.output.wiring)
    write_text_atomic(sm.output.wiring_md, markdown(wiring, sm.params.labels))
    failed = wiring[~wiring.holds]
    log.info("wiring: %d of %d relations hold%s\n%s", len(wiring) - len(failed), len(wiring),
             "" if failed.empty else "; NOT holding: " + ", ".join(
                 f"{r.relation}/{r.item_type} {r.row} vs {r.counterpart}" for r in failed.itertuples()),
             wiring.to_string(index=False))
