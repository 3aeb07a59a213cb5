"""Evaluation mixtures over the rank-classification tasks of `eval_tasks.py` (equal rates).

  xp3_eval                 every evaluation task (the paper's held-out evaluation)
  xp3_eval_<dataset>       one dataset: xnli, xcopa, xstory_cloze, xwinograd, anli, super_glue,
                           winogrande, story_cloze
  xp3_eval_multilingual    the four multilingual datasets (XNLI, XCOPA, XStoryCloze, XWinograd)
  xp3_eval_english         the English held-out sets (ANLI, CB, RTE, COPA, Winogrande, StoryCloze)
  xp3_eval_l1, xp3_eval_l2 tasks whose language is in xP3 (L1) or not (L2): the paper's
                           seen/unseen-language split of the finetuning data
  xp3_eval_sample          the rank-classification tasks whose data ships in the package
  xp3_gen_eval             every generative task (`gen_tasks.py`: FLORES-200, XL-Sum, TyDiQA)
  xp3_gen_eval_<dataset>   flores200, xlsum, tydiqa_goldp
  xp3_gen_eval_lang_<code> one language's generative tasks (e.g. xp3_gen_eval_lang_sw)
  xp3_gen_eval_sample      the generative tasks whose data ships in the package
  xp3_eval_all             xp3_eval and xp3_gen_eval together
  xp3_eval_all_sample      xp3_eval_sample and xp3_gen_eval_sample (the embedded default)

Rates do not matter for evaluation (evaluators read every task to its end); they are equal.
`mixtures.py` imports this module, so `import mixtures` registers these too.
"""
from __future__ import annotations

from typing import Sequence

import seqio

from xp3_tasks import eval_tasks
from xp3_tasks import gen_tasks


def _add(name: str, tasks: Sequence[str]) -> None:
  if not tasks:
    raise ValueError(f"evaluation mixture {name!r} would be empty")
  if name in seqio.MixtureRegistry.names():
    return
  seqio.MixtureRegistry.add(name, list(tasks), default_rate=1.0)


def register_eval_mixtures() -> list[str]:
  """Registers the evaluation mixtures (idempotent); returns their names."""
  names = []

  def add(name: str, tasks: Sequence[str]) -> None:
    _add(name, tasks)
    names.append(name)

  add("xp3_eval", eval_tasks.find_tasks())
  for dataset in eval_tasks.datasets():
    add(f"xp3_eval_{dataset}", eval_tasks.find_tasks(dataset=dataset))
  english = {s.dataset for s in eval_tasks.EVAL_SETS if s.english}
  add("xp3_eval_multilingual",
      [n for n in eval_tasks.find_tasks() if eval_tasks.TASK_INFOS[n].dataset not in english])
  add("xp3_eval_english",
      [n for n in eval_tasks.find_tasks() if eval_tasks.TASK_INFOS[n].dataset in english])
  add("xp3_eval_l1", eval_tasks.find_tasks(group="L1"))
  add("xp3_eval_l2", eval_tasks.find_tasks(group="L2"))
  add("xp3_eval_sample", eval_tasks.find_tasks(bundled_only=True))
  gen_sample = gen_tasks.find_gen_tasks(bundled_only=True)
  add("xp3_gen_eval", gen_tasks.find_gen_tasks())
  for dataset in gen_tasks.gen_datasets():
    add(f"xp3_gen_eval_{dataset}", gen_tasks.find_gen_tasks(dataset=dataset))
  for language in dict.fromkeys(i.language for i in gen_tasks.GEN_TASK_INFOS.values()):
    add(f"xp3_gen_eval_lang_{language.lower().replace('-', '_')}",
        gen_tasks.find_gen_tasks(language=language))
  add("xp3_gen_eval_sample", gen_sample)
  add("xp3_eval_all", eval_tasks.find_tasks() + gen_tasks.find_gen_tasks())
  add("xp3_eval_all_sample", eval_tasks.find_tasks(bundled_only=True) + gen_sample)
  return names


EVAL_MIXTURES = register_eval_mixtures()
