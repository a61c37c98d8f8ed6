"""Family ``maria``: Maria, Maria+Audio, Maria+C3KG and their text ablations
(:mod:`tiktalk.baselines.maria`). A row reads the frame/audio features when its model uses
frames or audio, the retrieved C3KG flows when it uses knowledge."""

from tiktalk.families.family import Family, WiringRelation

FAMILY = Family(
    name="maria",
    code="tiktalk.baselines.maria",
    settings="tiktalk.baselines.maria:MariaParams",
    schema="#/$defs/maria_params",
    reads={"features": ("model.use_visual", "model.use_audio"),
           "knowledge": ("model.use_knowledge",)},
    weight_keys=("init", "tokenizer"),
    # every row that sees frames against the same row without them; +Audio against the same
    # without audio; +C3KG against the same without knowledge
    relations=(WiringRelation("frames", "visual", "model.use_visual"),
               WiringRelation("audio", "audio", "model.use_audio"),
               WiringRelation("knowledge", "knowledge", "model.use_knowledge")),
)
