"""ChatGLM-6B interface double: the contract of THUDM/chatglm-6b's ``tokenization_chatglm.py``.

* a sentencepiece model (``ice_text.model``) wrapped by ``SPTokenizer``; ``"\\n"`` is written as
  the piece ``<n>``; special pieces ``[MASK] [gMASK] [sMASK] <unused_0> <sop> <eop> <ENC> <dBLOCK>``;
* ``build_inputs_with_special_tokens``: ``a [gMASK] <sop>`` and ``a [gMASK] <sop> b <eop>``;
* ``pad`` pads on the LEFT only and builds the model's own inputs: a boolean
  ``(1, seq, seq)`` attention mask per row (True = masked; pad rows/columns masked) and
  ``(2, seq)`` position ids (``model_input_names`` = input_ids, attention_mask, position_ids);
* like the real one, ``sp_tokenizer`` is set AFTER ``PreTrainedTokenizer.__init__``: transformers
  >= 4.34 reads the vocabulary inside that ``__init__`` and fails with
  ``'ChatGLMTokenizer' object has no attribute 'sp_tokenizer'``.
"""
import os
import shutil

import numpy as np
import sentencepiece as spm
from transformers.tokenization_utils import PreTrainedTokenizer
from transformers.utils import PaddingStrategy

SPECIAL_PIECES = ["[MASK]", "[gMASK]", "[sMASK]", "<unused_0>", "<sop>", "<eop>", "<ENC>", "<dBLOCK>", "<n>"]


class SPTokenizer:
    def __init__(self, vocab_file):
        self.sp = spm.SentencePieceProcessor(model_file=vocab_file)

    @property
    def num_tokens(self):
        return self.sp.get_piece_size()

    def tokenize(self, text):
        return self.sp.encode(text.replace("\n", "<n>"), out_type=str)

    def decode(self, ids):
        return self.sp.decode([int(i) for i in ids]).replace("<n>", "\n")

    def __getitem__(self, x):
        if isinstance(x, int):
            return self.sp.id_to_piece(x)
        return self.sp.piece_to_id(x)


class ChatGLMTokenizer(PreTrainedTokenizer):
    vocab_files_names = {"vocab_file": "ice_text.model"}
    model_input_names = ["input_ids", "attention_mask", "position_ids"]

    def __init__(self, vocab_file, bos_token="<sop>", eos_token="<eop>", end_token="</s>", mask_token="[MASK]",
                 gmask_token="[gMASK]", padding_side="left", pad_token="<pad>", unk_token="<unk>", **kwargs):
        super().__init__(padding_side=padding_side, bos_token=bos_token, eos_token=eos_token,
                         end_token=end_token, mask_token=mask_token, gmask_token=gmask_token,
                         pad_token=pad_token, unk_token=unk_token, **kwargs)
        self.vocab_file = vocab_file
        self.gmask_token = gmask_token
        self.sp_tokenizer = SPTokenizer(vocab_file)      # after super().__init__, as the real one

    @property
    def vocab_size(self):
        return self.sp_tokenizer.num_tokens

    def get_vocab(self):
        vocab = {self._convert_id_to_token(i): i for i in range(self.vocab_size)}
        vocab.update(self.added_tokens_encoder)
        return vocab

    def _tokenize(self, text, **kwargs):
        return self.sp_tokenizer.tokenize(text)

    def _convert_token_to_id(self, token):
        return self.sp_tokenizer[token]

    def _convert_id_to_token(self, index):
        return self.sp_tokenizer[index]

    def convert_tokens_to_string(self, tokens):
        return self.sp_tokenizer.decode([self.sp_tokenizer[t] for t in tokens])

    def _decode(self, token_ids, skip_special_tokens=False, **kwargs):
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        if skip_special_tokens:
            special = set(self.all_special_ids) | {self.sp_tokenizer[self.gmask_token]}
            token_ids = [i for i in token_ids if i not in special]
        return self.sp_tokenizer.decode(token_ids)

    def save_vocabulary(self, save_directory, filename_prefix=None):
        target = os.path.join(save_directory, self.vocab_files_names["vocab_file"])
        if os.path.abspath(self.vocab_file) != os.path.abspath(target):
            shutil.copyfile(self.vocab_file, target)
        return (target,)

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        gmask_id = self.sp_tokenizer[self.gmask_token]
        eos_id = self.sp_tokenizer[self.eos_token]
        ids = list(token_ids_0) + [gmask_id, self.sp_tokenizer[self.bos_token]]
        if token_ids_1 is not None:
            ids = ids + list(token_ids_1) + [eos_id]
        return ids

    def _pad(self, encoded_inputs, max_length=None, padding_strategy=PaddingStrategy.DO_NOT_PAD,
             pad_to_multiple_of=None, return_attention_mask=None, **kwargs):
        bos_id = self.sp_tokenizer[self.bos_token]
        mask_id = self.sp_tokenizer[self.mask_token]
        gmask_id = self.sp_tokenizer[self.gmask_token]
        assert self.padding_side == "left"
        ids = encoded_inputs[self.model_input_names[0]]
        n = len(ids)
        if padding_strategy == PaddingStrategy.LONGEST:
            max_length = n
        if max_length is not None and pad_to_multiple_of is not None and max_length % pad_to_multiple_of:
            max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
        needs_padding = padding_strategy != PaddingStrategy.DO_NOT_PAD and n != max_length
        if max_length is not None:
            context_length = ids.index(bos_id) if bos_id in ids else n
            if "attention_mask" not in encoded_inputs:
                mask = np.tril(np.ones((1, n, n)))
                mask[:, :, :context_length] = 1
                encoded_inputs["attention_mask"] = np.bool_(mask < 0.5)
            if "position_ids" not in encoded_inputs:
                position_ids = np.arange(n, dtype=np.int64)
                token = mask_id if mask_id in ids else gmask_id
                if token in ids:
                    position_ids[context_length:] = ids.index(token)
                block = np.concatenate([np.zeros(context_length, dtype=np.int64),
                                        np.arange(1, n - context_length + 1, dtype=np.int64)])
                encoded_inputs["position_ids"] = np.stack([position_ids, block], axis=0)
        if needs_padding:
            diff = max_length - n
            encoded_inputs["attention_mask"] = np.pad(encoded_inputs["attention_mask"],
                                                      [(0, 0), (diff, 0), (diff, 0)], constant_values=True)
            encoded_inputs["position_ids"] = np.pad(encoded_inputs["position_ids"], [(0, 0), (diff, 0)])
            encoded_inputs[self.model_input_names[0]] = [self.pad_token_id] * diff + list(ids)
        return encoded_inputs
