"""SentencePiece vocabularies as the library and the task package both load them: by path, with
no extra ids (mT5's 100 sentinels are inside its 250,000 pieces), one instance per path (seqio
compares vocabularies across the tasks of a mixture), and the facts of mT5's vocabulary.

seqio (and with it TensorFlow, seconds of start-up) is imported only when a seqio vocabulary is
asked for: `standalone` serves the commands that only encode and decode strings."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
  import seqio

MT5_VOCAB_PATH = "gs://t5-data/vocabs/mc4.250000.100extra/sentencepiece.model"
MT5_VOCAB_SIZE = 250_112  # mT5's embedding rows (250,100 pieces, padded)
VOCABULARY_FILE = "sentencepiece.model"  # what xmtf.train writes into MODEL_DIR
EOS_ID = 1


@functools.lru_cache(maxsize=None)
def sentencepiece(path: str) -> seqio.SentencePieceVocabulary:
  """The vocabulary at `path` (local or gs://), shared per path."""
  import seqio  # pylint: disable=g-import-not-at-top

  return seqio.SentencePieceVocabulary(path, extra_ids=0)


class StandaloneVocabulary:
  """`encode`, `decode` and `vocab_size` of seqio's SentencePieceVocabulary(path, extra_ids=0),
  computed with the sentencepiece library alone (no TensorFlow import: `python -m
  xmtf.generate` answers in a few seconds). Decoding stops after the first EOS and maps ids past
  the pieces to UNK, as seqio's does."""

  def __init__(self, model_file: str):
    import sentencepiece as spm  # pylint: disable=g-import-not-at-top

    self.path = model_file
    self._processor = spm.SentencePieceProcessor(model_file=model_file)

  @property
  def vocab_size(self) -> int:
    return self._processor.GetPieceSize()

  def encode(self, text: str) -> list[int]:
    return self._processor.EncodeAsIds(text)

  def decode(self, ids: Sequence[int]) -> str:
    ids = [int(i) for i in ids]
    if EOS_ID in ids:
      ids = ids[:ids.index(EOS_ID) + 1]
    unk = self._processor.unk_id()
    return self._processor.DecodeIds([unk if i >= self.vocab_size else i for i in ids])


@functools.lru_cache(maxsize=None)
def standalone(path: str) -> StandaloneVocabulary | seqio.SentencePieceVocabulary:
  """A vocabulary for encoding and decoding strings: `StandaloneVocabulary` for a local file,
  seqio's for other paths (gs://, read through TensorFlow's file system)."""
  if "://" in path:
    return sentencepiece(path)
  return StandaloneVocabulary(path)
