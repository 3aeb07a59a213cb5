"""The vocabulary the tasks tokenize with: mT5's SentencePiece model by path, overridable.

Real runs use mT5's mC4 SentencePiece model (250,000 pieces + 100 sentinels already inside,
hence no extra ids; the model's embedding is padded to 250,112). Tests and the embedded tiny
default use `SAMPLE_VOCAB_PATH`, a 2,000-piece unigram model trained on the bundled sample by
`python -m xp3_tasks.data.make_vocab` with mT5's special ids (pad 0, eos 1, unk 2) and byte
fallback, so any script encodes.

gin: `xp3_tasks.vocab.get_vocabulary.path = "..."` (or the macro `VOCABULARY_PATH` if a run
file binds it) changes the vocabulary of every xP3 task registered afterwards; tasks are
registered at import time, so bind it before `import xp3_tasks` (T5X's
`--gin.MIXTURE_OR_TASK_MODULE` import happens after gin parsing, as required).
"""
import os

import gin
import seqio

from xmtf import vocabularies

MT5_VOCAB_PATH = vocabularies.MT5_VOCAB_PATH
SAMPLE_VOCAB_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                                 "sentencepiece.model")


@gin.configurable(module="xp3_tasks.vocab")
def get_vocabulary(path: str | None = None) -> seqio.SentencePieceVocabulary:
  """The SentencePiece vocabulary at `path` (default: mT5's, `MT5_VOCAB_PATH`), no extra ids.

  Instances are cached per path so that every task shares one vocabulary object (seqio
  compares vocabularies across the tasks of a mixture).
  """
  return vocabularies.sentencepiece(path or MT5_VOCAB_PATH)
