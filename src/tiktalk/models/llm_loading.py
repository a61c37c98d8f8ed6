"""Loading a pretrained LLM and its tokenizer the way each one ships, under both pin sets.

The LLM rows run in one of two environments (README "The LLM env"): the main one
(transformers 5.x) or ``envs/llm.yaml`` (transformers 4.33, for ChatGLM-6B's hub code, which
breaks from 4.34 on). Everything here works under both; the differences it hides:

* **Which class.** A model with remote code names its classes in ``config.auto_map``. ChatGLM-6B
  registers ``AutoModel`` and ``AutoModelForSeq2SeqLM`` (both ``ChatGLMForConditionalGeneration``,
  a causal LM with its own head), not ``AutoModelForCausalLM``; asking for the latter fails.
  :func:`lm_auto_class_name` picks ``AutoModelForCausalLM`` when the model registers it (or is
  native to transformers), else ``AutoModel``, and the loaded model must have an output head.
* **dtype keyword.** transformers >= 4.56 takes ``dtype=``; older ones take ``torch_dtype=`` and
  silently store an unknown ``dtype=`` in the config, loading float32 (twice the memory).
* **Placement.** On CUDA the weights go straight onto the job's device (``device_map``, which
  needs ``accelerate``) in their final dtype: a 6B model is never materialised on the CPU, once
  per DDP rank.
* **Activation checkpointing.** ``activation_checkpointing_enable`` (5.x, non-reentrant) or
  ``gradient_checkpointing_enable()`` (4.33, reentrant: the input embeddings must then require
  grad, or adapters inside checkpointed layers get no gradient).
* **Tokenizer failures.** ChatGLM-6B's tokenizer sets ``sp_tokenizer`` after
  ``super().__init__()``, which transformers >= 4.34 already asks for; the AttributeError is turned
  into a message that names the env to use.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
LLM_ENV_HINT = ("run this row in the LLM env (envs/llm.yaml: transformers 4.33, the last release "
                "its remote code supports; `env: llm` in the baseline's config block; locally "
                ".venv-llm from tools/setup.sh)")


def torch_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"torch_dtype must be one of {sorted(DTYPES)}, got {name!r}") from None


def transformers_version() -> tuple[int, int]:
    import transformers

    major, minor = transformers.__version__.split(".")[:2]
    return int(major), int(minor)


def dtype_kwargs(dtype: torch.dtype) -> dict:
    """The ``from_pretrained``/``from_config`` keyword for the weights' dtype in this version."""
    return {"dtype": dtype} if transformers_version() >= (4, 56) else {"torch_dtype": dtype}


def placement_kwargs(device: torch.device | str | None) -> dict:
    """``from_pretrained`` keywords that load the weights straight onto ``device`` (CUDA only;
    on the CPU the plain load is already the final placement)."""
    if device is None or torch.device(device).type != "cuda":
        return {}
    return {"device_map": {"": str(torch.device(device))}, "low_cpu_mem_usage": True}


def is_native(model: nn.Module) -> bool:
    """True for a model class shipped by transformers itself (not remote code)."""
    return type(model).__module__.startswith("transformers.models.")


def lm_auto_class_name(config) -> str:
    """The transformers auto class that builds a language model WITH its head for ``config``."""
    auto_map = dict(getattr(config, "auto_map", None) or {})
    if not auto_map or "AutoModelForCausalLM" in auto_map:
        return "AutoModelForCausalLM"
    if "AutoModel" in auto_map:
        return "AutoModel"
    raise ValueError(f"config.auto_map registers {sorted(auto_map)}: no AutoModelForCausalLM or "
                     f"AutoModel, so no language model can be built from it")


def _check_has_head(model: nn.Module, what: str) -> None:
    if model.get_output_embeddings() is None:
        raise ValueError(f"{what} loaded as {type(model).__name__}, which has no output head: "
                         f"not a language model")


def load_pretrained_lm(name_or_path: str, revision: str | None = None, trust_remote_code: bool = False,
                       dtype: torch.dtype = torch.float32, device=None) -> nn.Module:
    """A pretrained LLM in ``dtype`` (on ``device`` when it is CUDA), through the class its
    config registers (see the module docstring)."""
    import transformers
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    cls_name = lm_auto_class_name(config)
    cls = getattr(transformers, cls_name)
    model = cls.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code,
                                config=config, **dtype_kwargs(dtype), **placement_kwargs(device))
    _check_has_head(model, f"{name_or_path} ({cls_name})")
    log.info("loaded %s%s as %s (%s) in %s", name_or_path, f"@{revision}" if revision else "",
             type(model).__name__, cls_name, str(dtype).replace("torch.", ""))
    return model


def build_lm_from_config(model_config: dict, dtype: torch.dtype = torch.float32, device=None) -> nn.Module:
    """A randomly initialised causal LM from ``{"model_type": ..., **kwargs}`` (seeded by the
    caller), built directly on ``device`` in ``dtype``."""
    from transformers import AutoConfig, AutoModelForCausalLM

    mc = dict(model_config)
    model_type = mc.pop("model_type", None)
    if model_type is None:
        raise ValueError("model_config needs a model_type (e.g. llama, qwen2, gpt2)")
    conf = AutoConfig.for_model(model_type, **mc)
    with torch.device(device or "cpu"):
        model = AutoModelForCausalLM.from_config(conf, **dtype_kwargs(dtype))
    return model.to(dtype)


def load_pretrained_tokenizer(name_or_path: str, revision: str | None = None, trust_remote_code: bool = False):
    """``AutoTokenizer.from_pretrained``; a remote tokenizer that breaks on this transformers
    version raises a RuntimeError naming the env it needs."""
    import transformers
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    except (AttributeError, TypeError) as exc:
        # >= 4.34: AttributeError 'sp_tokenizer'; 5.x: its __getattr__ then hands back the
        # class's vocab_size property object, a TypeError where a number was expected
        if not trust_remote_code:
            raise
        raise RuntimeError(
            f"the remote tokenizer of {name_or_path} does not load under transformers "
            f"{transformers.__version__} ({type(exc).__name__}: {exc}); ChatGLM-6B's sets its "
            f"attributes after PreTrainedTokenizer.__init__, which transformers >= 4.34 already "
            f"reads: {LLM_ENV_HINT}"
        ) from exc


def enable_activation_checkpointing(model: nn.Module) -> None:
    """Activation (gradient) checkpointing on every layer, under both transformers versions.

    The input embeddings are made to require grad as well: with reentrant checkpointing
    (transformers 4.33, remote code) a checkpointed segment whose inputs need no grad gives its
    adapters no gradient.
    """
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable({"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    if getattr(model.config, "use_cache", None):
        model.config.use_cache = False        # a cache is useless (and warned about) in training
