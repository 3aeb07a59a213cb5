"""Prompts of the paper's zero-shot held-out evaluation (rank classification); which set is used.

The paper scored mT0 with five English promptsource prompts per dataset, the same prompts in every
language (RECIPE.md section 4). Two sets can render the evaluation tasks (`prompt_set()`):

  * the paper's: promptsource templates read as data (`promptsource_templates.py`) from the
    directory the setting `XP3_PROMPTSOURCE_DIR` names (gin macro or environment variable, as
    the other XP3_* settings of config.py), e.g. a checkout's `promptsource/templates`.
    `XP3_PROMPTSOURCE_VARIANT` picks the English templates ('en', the paper's main results, the
    default) or their machine / human translations ('mt' / 'ht': the `_<lang>mt` / `_<lang>ht`
    templates of xP3mt's evaluation; English datasets and English configs keep 'en').
  * the bundled own-wording prompts below (the default, as promptsource is not bundled): each
    keeps the intent, the slots and the answer choices of the paper's prompt it stands for
    (`paper_name`), in its own wording. Their accuracies are not the paper's numbers.

Every dataset reader (`eval_tasks.py`) turns its raw JSON-lines record into one of four normalised
record shapes, and a bundled prompt renders such a record into `(inputs, choices, label)`
(promptsource templates render the raw record, as promptsource does):

  * NLI:      premise, hypothesis, label (0 entailment, 1 neutral, 2 contradiction; two-way sets
              such as RTE use 0 entailment, 1 not entailment)
  * COPA:     premise, choice1, choice2, question ('cause' | 'effect'), label (0 | 1)
  * STORY:    sentences (the four story sentences), endings (two), label (0 | 1)
  * WINOGRAD: sentence (with one '_' blank), option1, option2, label (0 | 1)

`inputs` carries no EOS and each choice gets one when tokenised (the paper's protocol).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

from xp3_tasks import config

Record = Mapping[str, Any]
Rendered = tuple[str, list[str], int]


@dataclasses.dataclass(frozen=True)
class Prompt:
  """One evaluation prompt.

  Attributes:
    id: identifier used in task names (lower case, [a-z0-9_]).
    paper_name: the promptsource name of the prompt the paper used, which this one stands for.
    family: the record shape it renders ('nli3', 'nli2', 'copa', 'story', 'winograd').
    render: record -> (inputs, answer choices, index of the correct choice).
  """
  id: str
  paper_name: str
  family: str
  render: Callable[[Record], Rendered]

  def __call__(self, record: Record) -> Rendered:
    return self.render(record)


# --------------------------------------------------------------------------------------------
# NLI (XNLI, ANLI, CB: three-way; RTE: two-way)

def _nli(template: str, choices: Sequence[str]) -> Callable[[Record], Rendered]:
  """A renderer that fills `template` with premise and hypothesis; `choices` follow label order."""

  def render(r: Record) -> Rendered:
    text = template.format(premise=r["premise"], hypothesis=r["hypothesis"])
    return text, list(choices), int(r["label"])

  return render


_GPT3 = "{premise}\nQuestion: {hypothesis} Is that True, False or Neither?"
_CROWD = ('Suppose "{premise}" is accurate. Then the statement "{hypothesis}" is Correct, '
          "Incorrect or Inconclusive?")
_INFER = 'Given that {premise} Can we conclude that "{hypothesis}"? Yes, no, or maybe?'
_JUSTIFIED = '{premise} Is one justified in claiming that "{hypothesis}"? Yes, no, or maybe?'
_GPI = ('Take "{premise}" as true. Then "{hypothesis}" is guaranteed, possible, or '
        "impossible?")
_GUARANTEED_TRUE = 'Given {premise} Is it guaranteed to be true that "{hypothesis}"? Yes or no?'
# Two-way wordings (RTE) offer only the two answers.
_GPT3_2WAY = "{premise}\nQuestion: {hypothesis} Is that True or False?"
_CROWD_2WAY = ('{premise} Judging by this text and common knowledge alone, is "{hypothesis}" '
               "surely right? Yes or no?")
_FOLLOW_2WAY = 'Given that {premise} Does "{hypothesis}" follow from it? Yes or no?'
_ASSUME_2WAY = 'Given {premise} Ought we to take "{hypothesis}" as true? Yes or no?'

NLI3_PROMPTS: tuple[Prompt, ...] = (
    Prompt("gpt_3_style", "GPT-3 style", "nli3", _nli(_GPT3, ["True", "Neither", "False"])),
    Prompt("mnli_crowdsource", "MNLI crowdsource", "nli3",
           _nli(_CROWD, ["Correct", "Inconclusive", "Incorrect"])),
    Prompt("can_we_infer", "can we infer", "nli3", _nli(_INFER, ["Yes", "Maybe", "No"])),
    Prompt("justified_in_saying", "justified in saying", "nli3",
           _nli(_JUSTIFIED, ["Yes", "Maybe", "No"])),
    Prompt("guaranteed_possible_impossible", "guaranteed/possible/impossible", "nli3",
           _nli(_GPI, ["Guaranteed", "Possible", "Impossible"])),
)

# RTE has its own set in the paper (bigscience evaluate_mt0.slurm): its 'MNLI crowdsource' answers
# Yes/No, and 'does it follow that', 'should assume', 'guaranteed true' replace the three-way-only
# prompts.
NLI2_PROMPTS: tuple[Prompt, ...] = (
    Prompt("mnli_crowdsource", "MNLI crowdsource", "nli2", _nli(_CROWD_2WAY, ["Yes", "No"])),
    Prompt("gpt_3_style", "GPT-3 style", "nli2", _nli(_GPT3_2WAY, ["True", "False"])),
    Prompt("does_it_follow_that", "does it follow that", "nli2",
           _nli(_FOLLOW_2WAY, ["Yes", "No"])),
    Prompt("should_assume", "should assume", "nli2", _nli(_ASSUME_2WAY, ["Yes", "No"])),
    Prompt("guaranteed_true", "guaranteed true", "nli2", _nli(_GUARANTEED_TRUE, ["Yes", "No"])),
)


# --------------------------------------------------------------------------------------------
# COPA (XCOPA, COPA)

def _copa_choices(r: Record) -> list[str]:
  return [r["choice1"], r["choice2"]]


def _is_cause(r: Record) -> bool:
  question = r["question"]
  if question not in ("cause", "effect"):
    raise ValueError(f"COPA record: question must be 'cause' or 'effect', got {question!r}")
  return question == "cause"


def _copa_best_option(r: Record) -> Rendered:
  kind = "cause" if _is_cause(r) else "effect"
  text = (f"{r['premise']}\n\nWhich option is the better {kind}?\n- {r['choice1']}\n"
          f"- {r['choice2']}")
  return text, _copa_choices(r), int(r["label"])


def _copa_c1_or_c2(r: Record) -> Rendered:
  premise = r["premise"].rstrip()
  if premise and premise[-1] in ".。!?！？":
    premise = premise[:-1]
  connective = "because" if _is_cause(r) else "so"
  text = f'"{r["choice1"]}" or "{r["choice2"]}"? {premise} {connective}'
  return text, _copa_choices(r), int(r["label"])


def _copa_hesitating(r: Record) -> Rendered:
  kind = "cause" if _is_cause(r) else "consequence"
  text = (f"{r['premise']}\n\nI can't make up my mind. Which of these is the more likely {kind}?\n"
          f"- {r['choice1']}\n- {r['choice2']}")
  return text, _copa_choices(r), int(r["label"])


def _copa_cause_effect(r: Record) -> Rendered:
  kind = "cause" if _is_cause(r) else "effect"
  text = (f"{r['premise']}\n\nPick the more plausible {kind}:\n- {r['choice1']}\n"
          f"- {r['choice2']}")
  return text, _copa_choices(r), int(r["label"])


def _copa_plausible(r: Record) -> Rendered:
  lead = "This happened because..." if _is_cause(r) else "As a result..."
  text = (f"{r['premise']} {lead}\nChoose the more plausible continuation:\n- {r['choice1']}\n"
          f"- {r['choice2']}")
  return text, _copa_choices(r), int(r["label"])


COPA_PROMPTS: tuple[Prompt, ...] = (
    Prompt("best_option", "best_option", "copa", _copa_best_option),
    Prompt("c1_or_c2_premise_so_because", "C1 or C2? premise, so/because…", "copa",
           _copa_c1_or_c2),
    Prompt("i_am_hesitating", "i_am_hesitating", "copa", _copa_hesitating),
    Prompt("cause_effect", "cause_effect", "copa", _copa_cause_effect),
    Prompt("plausible_alternatives", "plausible_alternatives", "copa", _copa_plausible),
)


# --------------------------------------------------------------------------------------------
# Story cloze (XStoryCloze, StoryCloze 2016)

def _story(r: Record) -> str:
  return " ".join(s.strip() for s in r["sentences"])


def _story_continuation(r: Record) -> Rendered:
  e1, e2 = r["endings"]
  text = (f"How could this story go on?\n\n{_story(r)}\n\nOptions:\n- {e1}\n- {e2}")
  return text, [e1, e2], int(r["label"])


def _story_answer_given_options(r: Record) -> Rendered:
  e1, e2 = r["endings"]
  text = (f"{_story(r)} Which of the two endings fits this story: \"{e1}\" or \"{e2}\"?")
  return text, [e1, e2], int(r["label"])


def _story_novel_correct_ending(r: Record) -> Rendered:
  e1, e2 = r["endings"]
  text = (f"Here is the beginning of a short story:\n\n{_story(r)}\n\nWhich sentence ends it "
          f"correctly?\n- {e1}\n- {e2}")
  return text, [e1, e2], int(r["label"])


def _story_generate_ending(r: Record) -> Rendered:
  e1, e2 = r["endings"]
  text = f"Write an ending for this story: {_story(r)}"
  return text, [e1, e2], int(r["label"])


def _story_choose_ending(r: Record) -> Rendered:
  e1, e2 = r["endings"]
  text = (f"Read the story and choose its ending.\n\nStory: {_story(r)}\n\nEnding 1: {e1}\n"
          f"Ending 2: {e2}")
  return text, [e1, e2], int(r["label"])


STORY_PROMPTS: tuple[Prompt, ...] = (
    Prompt("story_continuation_and_options", "Story Continuation and Options", "story",
           _story_continuation),
    Prompt("answer_given_options", "Answer Given options", "story", _story_answer_given_options),
    Prompt("novel_correct_ending", "Novel Correct Ending", "story", _story_novel_correct_ending),
    Prompt("generate_ending", "Generate Ending", "story", _story_generate_ending),
    Prompt("choose_story_ending", "Choose Story Ending", "story", _story_choose_ending),
)


# --------------------------------------------------------------------------------------------
# Winograd (XWinograd, Winogrande)

def _options(r: Record) -> list[str]:
  return [r["option1"], r["option2"]]


def _wino_underscore_refer_to(r: Record) -> Rendered:
  text = (f"{r['sentence']}\nIn the sentence above, who or what is the _: {r['option1']} or "
          f"{r['option2']}?")
  return text, _options(r), int(r["label"])


def _wino_replace(r: Record) -> Rendered:
  text = (f"{r['sentence']}\nFill the _ in the sentence above with the right option:\n"
          f"- {r['option1']}\n- {r['option2']}")
  return text, _options(r), int(r["label"])


def _wino_stand_for(r: Record) -> Rendered:
  text = (f"In the sentence below, is the _ standing for {r['option1']} or {r['option2']}?\n"
          f"{r['sentence']}")
  return text, _options(r), int(r["label"])


def _wino_does_underscore_refer_to(r: Record) -> Rendered:
  text = (f"{r['sentence']} In this sentence, is the _ {r['option1']} or {r['option2']}?")
  return text, _options(r), int(r["label"])


def _wino_true_or_false(r: Record) -> Rendered:
  text = (f"The _ in the sentence below means {r['option1']}. True or False?\n{r['sentence']}")
  return text, ["True", "False"], int(r["label"])


WINOGRAD_PROMPTS: tuple[Prompt, ...] = (
    Prompt("underscore_refer_to", "underscore refer to", "winograd", _wino_underscore_refer_to),
    Prompt("replace", "Replace", "winograd", _wino_replace),
    Prompt("stand_for", "stand for", "winograd", _wino_stand_for),
    Prompt("does_underscore_refer_to", "does underscore refer to", "winograd",
           _wino_does_underscore_refer_to),
    Prompt("true_or_false", "True or False", "winograd", _wino_true_or_false),
)

PROMPTS_BY_FAMILY: dict[str, tuple[Prompt, ...]] = {
    "nli3": NLI3_PROMPTS,
    "nli2": NLI2_PROMPTS,
    "copa": COPA_PROMPTS,
    "story": STORY_PROMPTS,
    "winograd": WINOGRAD_PROMPTS,
}


def prompts_for(family: str) -> tuple[Prompt, ...]:
  """The five prompts of a record family ('nli3', 'nli2', 'copa', 'story', 'winograd')."""
  if family not in PROMPTS_BY_FAMILY:
    raise ValueError(f"prompts_for: unknown family {family!r}; known: {sorted(PROMPTS_BY_FAMILY)}")
  return PROMPTS_BY_FAMILY[family]


# --------------------------------------------------------------------------------------------
# Which prompts render the tasks

VARIANTS = ("en", "mt", "ht")


@dataclasses.dataclass(frozen=True)
class PromptSet:
  """The prompts the evaluation tasks render.

  Attributes:
    directory: promptsource `templates/` directory (the paper's prompts), or None for the
      bundled own-wording prompts.
    variant: 'en' (English templates, the paper's main results), 'mt' or 'ht' (translations).
  """
  directory: str | None = None
  variant: str = "en"

  @property
  def is_paper(self) -> bool:
    """True when the tasks render the paper's prompts, so its numbers are comparable."""
    return self.directory is not None and self.variant == "en"

  def describe(self) -> str:
    if self.directory is None:
      return ("bundled own-wording prompts (not the paper's; set XP3_PROMPTSOURCE_DIR for "
              "promptsource's)")
    kind = {"en": "English", "mt": "machine-translated", "ht": "human-translated"}[self.variant]
    return f"promptsource templates ({kind}, '{self.variant}') from {self.directory}"


def prompt_set() -> PromptSet:
  """The current set: settings XP3_PROMPTSOURCE_DIR and XP3_PROMPTSOURCE_VARIANT (gin macro,
  else environment variable); read when a task renders its examples."""
  directory = config.setting("XP3_PROMPTSOURCE_DIR")
  directory = None if directory is None or directory.strip().lower() in ("", "none") else directory
  variant = (config.setting("XP3_PROMPTSOURCE_VARIANT") or "en").strip().lower()
  if variant not in VARIANTS:
    raise ValueError(f"XP3_PROMPTSOURCE_VARIANT must be one of {list(VARIANTS)}, got {variant!r}")
  if variant != "en" and directory is None:
    raise ValueError(f"XP3_PROMPTSOURCE_VARIANT={variant!r} needs XP3_PROMPTSOURCE_DIR (the "
                     "translated templates are promptsource's)")
  return PromptSet(directory, variant)
