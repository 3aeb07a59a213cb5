"""SentencePiece vocabularies as the library and the task package both load them: by path, with
no extra ids (mT5's 100 sentinels are inside its 250,000 pieces), one instance per path (seqio
compares vocabularies across the tasks of a mixture), and the facts of mT5's vocabulary."""
from __future__ import annotations

import functools

import seqio

MT5_VOCAB_PATH = "gs://t5-data/vocabs/mc4.250000.100extra/sentencepiece.model"
MT5_VOCAB_SIZE = 250_112  # mT5's embedding rows (250,100 pieces, padded)
VOCABULARY_FILE = "sentencepiece.model"  # what xmtf.train writes into MODEL_DIR


@functools.lru_cache(maxsize=None)
def sentencepiece(path: str) -> seqio.SentencePieceVocabulary:
  """The vocabulary at `path` (local or gs://), shared per path."""
  return seqio.SentencePieceVocabulary(path, extra_ids=0)
