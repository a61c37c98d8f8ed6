"""ChatGLM-6B interface double: the contract of THUDM/chatglm-6b's ``modeling_chatglm.py``.

A tiny model with the real one's interface, written into a local model directory by a test
fixture and loaded through ``trust_remote_code`` so that the pipeline's real loading code runs:

* registered for ``AutoModel`` / ``AutoModelForSeq2SeqLM`` only (``config.json`` ``auto_map``);
* the attention mask (bidirectional over the context up to ``<sop>``, causal after it) and the 2-D
  position ids (position of ``[gMASK]`` after the context; block positions 1, 2, ... after it)
  are built from ``input_ids``: a call with ``inputs_embeds`` alone is refused, and so is a mask
  that is not the model's own boolean ``(batch, 1, seq, seq)`` form (True = masked);
* layer names ``transformer.layers.N.attention.query_key_value`` etc. (LoRA targets), DeepNorm
  residuals, a separate ``lm_head``;
* ``gradient_checkpointing`` through transformers 4.33's ``_set_gradient_checkpointing`` hook,
  with reentrant checkpoints (adapters get no gradient unless the input embeddings require grad);
* generation extends the boolean mask and the position ids step by step like the real one
  (``_update_model_kwargs_for_generation``); unlike it, it keeps no key/value cache.

The weights are random and the positions are learned embeddings instead of 2-D rotary ones:
nothing here claims ChatGLM-6B's numerics, only its interface.
"""
import torch
import torch.utils.checkpoint
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import PreTrainedModel

from .configuration_chatglm import ChatGLMConfig


class SelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.query_key_value = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden, mask):
        b, n, h = hidden.shape
        q, k, v = self.query_key_value(hidden).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) / self.head_dim ** 0.5
        scores = scores.masked_fill(mask, -10000.0)        # the real one: boolean masks only
        probs = scores.float().softmax(dim=-1).to(v.dtype)
        return self.dense((probs @ v).transpose(1, 2).reshape(b, n, h))


class GLU(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(config.hidden_size, config.inner_hidden_size)
        self.dense_4h_to_h = nn.Linear(config.inner_hidden_size, config.hidden_size)

    def forward(self, x):
        return self.dense_4h_to_h(nn.functional.gelu(self.dense_h_to_4h(x)))


class GLMBlock(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layernorm_epsilon)
        self.attention = SelfAttention(config)
        self.post_attention_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layernorm_epsilon)
        self.mlp = GLU(config)
        self.alpha = (2 * config.num_layers) ** 0.5

    def forward(self, hidden, mask):
        attention_input = self.input_layernorm(hidden)
        hidden = attention_input * self.alpha + self.attention(attention_input, mask)
        mlp_input = self.post_attention_layernorm(hidden)
        return mlp_input * self.alpha + self.mlp(mlp_input)


class ChatGLMPreTrainedModel(PreTrainedModel):
    config_class = ChatGLMConfig
    base_model_prefix = "transformer"
    supports_gradient_checkpointing = True
    _no_split_modules = ["GLMBlock"]

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    def _set_gradient_checkpointing(self, module, value=False):    # transformers < 4.35 hook
        if isinstance(module, ChatGLMModel):
            module.gradient_checkpointing = value

    def _context_lengths(self, input_ids):
        bos = self.config.bos_token_id
        out = []
        for i, seq in enumerate(input_ids.tolist()):
            if bos not in seq:
                raise ValueError(f"row {i} has no <sop> (id {bos}): ChatGLM-6B's input is "
                                 f"'prompt [gMASK] <sop> response'")
            out.append(seq.index(bos))
        return out

    def get_masks(self, input_ids, device):
        b, n = input_ids.shape
        mask = torch.ones((b, n, n), device=device).tril_()
        for i, context_length in enumerate(self._context_lengths(input_ids)):
            mask[i, :, :context_length] = 1
        return (mask.unsqueeze(1) < 0.5).bool()

    def get_position_ids(self, input_ids, device):
        b, n = input_ids.shape
        mask_id, gmask_id = self.config.mask_token_id, self.config.gmask_token_id
        mask_positions = []
        for i, seq in enumerate(input_ids.tolist()):
            token = gmask_id if gmask_id in seq else mask_id
            if token not in seq:
                raise ValueError(f"row {i} has neither [gMASK] nor [MASK]")
            mask_positions.append(seq.index(token))
        position_ids = torch.arange(n, dtype=torch.long, device=device).unsqueeze(0).repeat(b, 1)
        block_position_ids = torch.zeros((b, n), dtype=torch.long, device=device)
        for i, context_length in enumerate(self._context_lengths(input_ids)):
            position_ids[i, context_length:] = mask_positions[i]
            block_position_ids[i, context_length:] = torch.arange(1, n - context_length + 1, device=device)
        return torch.stack((position_ids, block_position_ids), dim=1)


class ChatGLMModel(ChatGLMPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        h = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, h)
        self.position_embeddings = nn.Embedding(config.max_sequence_length, h)
        self.block_position_embeddings = nn.Embedding(config.max_sequence_length, h)
        self.layers = nn.ModuleList(GLMBlock(config) for _ in range(config.num_layers))
        self.final_layernorm = nn.LayerNorm(h, eps=config.layernorm_epsilon)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self):
        return self.word_embeddings

    def set_input_embeddings(self, new_embeddings):
        self.word_embeddings = new_embeddings

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, past_key_values=None,
                inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        if input_ids is None:
            raise ValueError("ChatGLM-6B builds its attention mask and 2-D position ids from input_ids "
                             "([gMASK], <sop>): it cannot be driven by inputs_embeds alone")
        if inputs_embeds is not None:
            raise ValueError("You cannot specify both input_ids and inputs_embeds at the same time")
        if past_key_values is not None:
            raise ValueError("this double keeps no key/value cache")
        b, n = input_ids.shape
        if attention_mask is None:
            attention_mask = self.get_masks(input_ids, input_ids.device)
        elif attention_mask.dtype != torch.bool or tuple(attention_mask.shape) != (b, 1, n, n):
            raise ValueError(f"ChatGLM-6B takes its own boolean (batch, 1, seq, seq) attention mask "
                             f"(True = masked) or none; got {attention_mask.dtype} "
                             f"{tuple(attention_mask.shape)}")
        if position_ids is None:
            position_ids = self.get_position_ids(input_ids, input_ids.device)
        elif tuple(position_ids.shape) != (b, 2, n):
            raise ValueError(f"ChatGLM-6B takes (batch, 2, seq) position ids, got {tuple(position_ids.shape)}")
        hidden = (self.word_embeddings(input_ids) + self.position_embeddings(position_ids[:, 0])
                  + self.block_position_embeddings(position_ids[:, 1]))
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                hidden = torch.utils.checkpoint.checkpoint(layer, hidden, attention_mask, use_reentrant=True)
            else:
                hidden = layer(hidden, attention_mask)
        return BaseModelOutputWithPast(last_hidden_state=self.final_layernorm(hidden))


class ChatGLMForConditionalGeneration(ChatGLMPreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.transformer = ChatGLMModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.transformer.word_embeddings

    def set_input_embeddings(self, new_embeddings):
        self.transformer.word_embeddings = new_embeddings

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, new_embeddings):
        self.lm_head = new_embeddings

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        hidden = self.transformer(input_ids=input_ids, position_ids=position_ids,
                                  attention_mask=attention_mask, past_key_values=past_key_values,
                                  inputs_embeds=inputs_embeds).last_hidden_state
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            shift_logits = logits[..., :-1, :].float().contiguous()
            shift_labels = labels[..., 1:].contiguous()
            loss = nn.functional.cross_entropy(shift_logits.view(-1, shift_logits.size(-1)),
                                               shift_labels.view(-1), ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=None)

    def prepare_inputs_for_generation(self, input_ids, past=None, past_key_values=None, attention_mask=None,
                                      position_ids=None, **kwargs):
        if attention_mask is not None and attention_mask.dtype != torch.bool:
            attention_mask = None       # the real one warns and rebuilds it from input_ids
        return {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}

    def _update_model_kwargs_for_generation(self, outputs, model_kwargs, is_encoder_decoder=False,
                                            standardize_cache_format=False, **kwargs):
        model_kwargs["past_key_values"] = None
        mask = model_kwargs.get("attention_mask")
        if mask is not None and mask.dtype == torch.bool:
            mask = torch.cat([mask, mask.new_ones((*mask.shape[:3], 1))], dim=3)
            new_row = mask[:, :, -1:].clone()
            new_row[..., -1] = False
            model_kwargs["attention_mask"] = torch.cat([mask, new_row], dim=2)
        position_ids = model_kwargs.get("position_ids")
        if position_ids is not None:
            new_position = position_ids[..., -1:].clone()
            new_position[:, 1, :] += 1
            model_kwargs["position_ids"] = torch.cat([position_ids, new_position], dim=-1)
        return model_kwargs
