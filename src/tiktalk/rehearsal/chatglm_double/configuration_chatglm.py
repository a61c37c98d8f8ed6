"""ChatGLM-6B interface double: its config class (remote code, ``model_type: chatglm``)."""
from transformers.configuration_utils import PretrainedConfig


class ChatGLMConfig(PretrainedConfig):
    model_type = "chatglm"

    def __init__(self, vocab_size=130528, hidden_size=4096, num_layers=28, num_attention_heads=32,
                 inner_hidden_size=16384, max_sequence_length=2048, layernorm_epsilon=1e-5,
                 bos_token_id=130004, eos_token_id=130005, mask_token_id=130000, gmask_token_id=130001,
                 pad_token_id=3, position_encoding_2d=True, use_cache=True, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_attention_heads = num_attention_heads
        self.inner_hidden_size = inner_hidden_size
        self.max_sequence_length = max_sequence_length
        self.layernorm_epsilon = layernorm_epsilon
        self.mask_token_id = mask_token_id
        self.gmask_token_id = gmask_token_id
        self.position_encoding_2d = position_encoding_2d
        self.use_cache = use_cache
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         **kwargs)
