"""Family ``causal_lm``: the paper's ChatGLM-6B row (and the Qwen2 overlay's), a causal LM
fine-tuned with LoRA (:mod:`tiktalk.baselines.causal_lm`); text only. A pretrained
``model.base_model`` brings its own tokenizer; the demo's random base reads the pipeline's."""

from tiktalk.families.family import Family

FAMILY = Family(
    name="causal_lm",
    code="tiktalk.baselines.causal_lm",
    settings="tiktalk.baselines.causal_lm:CausalLMParams",
    schema="#/$defs/causal_lm_params",
    pipeline_tokenizer="model.base_model",
    weight_keys=("model.base_model",),
)
