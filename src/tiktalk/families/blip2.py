"""Family ``blip2``: BLIP-2_Img / BLIP-2_Video (:mod:`tiktalk.baselines.blip2`): a Q-Former on
the image encoder's tokens in front of the LLM another row fine-tuned (``llm_from``), whose
tokenizer it uses."""

from tiktalk.families.family import Family, WiringRelation

FAMILY = Family(
    name="blip2",
    code="tiktalk.baselines.blip2",
    settings="tiktalk.baselines.blip2:Blip2Params",
    schema="#/$defs/blip2_params",
    reads={"image_features": True},
    llm_from=True,
    pipeline_tokenizer=False,
    weight_keys=("model.pretrained.name_or_path",),
    relations=(WiringRelation("frames", "visual"),),    # against its LLM's row, text only
)
