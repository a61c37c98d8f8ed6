"""Rule train_tokenizer: WordPiece vocabulary on the training dialogues and C3KG text."""
from pathlib import Path

from tiktalk.logs import script_logging
from tiktalk.models.tokenizer import train_wordpiece
from tiktalk.models.tokenizer_corpus import tokenizer_corpus

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    texts = tokenizer_corpus(sm.input.dialogues, sm.input.c3kg)
    tok = train_wordpiece(texts, Path(sm.output.vocab).parent,
                          vocab_size=sm.params.tokenizer.get("vocab_size", 8000))
    log.info("vocabulary of %d tokens from %d texts", len(tok), len(texts))
