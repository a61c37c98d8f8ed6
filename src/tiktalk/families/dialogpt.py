"""Family ``dialogpt``: the paper's DialoGPT row, GPT2-chitchat fine-tuned on TikTalk
(:mod:`tiktalk.baselines.dialogpt`); text only. With ``params.tokenizer`` it brings its own
vocabulary, else it reads the pipeline's tokenizer."""

from tiktalk.families.family import Family

FAMILY = Family(
    name="dialogpt",
    code="tiktalk.baselines.dialogpt",
    settings="tiktalk.baselines.dialogpt:DialoGPTParams",
    schema="#/$defs/dialogpt_params",
    pipeline_tokenizer="tokenizer",
    weight_keys=("tokenizer", "model.pretrained"),
)
