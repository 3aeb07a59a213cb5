"""Promptsource templates as data: the loader's semantics, and the evaluation tasks rendering the
paper's templates (../shared/promptsource/templates) exactly as promptsource renders them.

Expected strings come from promptsource itself: `tests/data/promptsource_reference.json.gz` was
written by promptsource's own `Template.apply` / `get_answer_choices_list` (Muennighoff/
promptsource, branch xp3mt; see tests/data/render_promptsource_reference.py), and the strings
spelled out below are entries of it, checked by hand against the YAML. The loader-only tests at
the top use templates written here; their expectations follow promptsource's code (masked `|||`,
`truncate(2048)` rewrite, stripping) and were checked against promptsource on this machine.
"""
import collections
import gzip
import json
import pathlib

import gin
import pytest

from conftest import SHARED
from xp3_tasks import aggregation
from xp3_tasks import eval_prompts
from xp3_tasks import eval_tasks
from xp3_tasks import promptsource_templates as pt

TEMPLATES = SHARED / "promptsource" / "templates"
REFERENCE = pathlib.Path(__file__).parent / "data" / "promptsource_reference.json.gz"


@pytest.fixture
def templates_dir():
  if not TEMPLATES.is_dir():
    pytest.skip(f"promptsource templates not found at {TEMPLATES} (../shared is not beside the "
                "checkout)")
  return str(TEMPLATES)


@pytest.fixture
def paper_prompts(templates_dir, monkeypatch):
  monkeypatch.setenv("XP3_PROMPTSOURCE_DIR", templates_dir)
  monkeypatch.delenv("XP3_PROMPTSOURCE_VARIANT", raising=False)
  return templates_dir


def _write_templates(tmp_path, body: str) -> str:
  path = tmp_path / "demo" / "templates.yaml"
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("dataset: demo\ntemplates:\n" + body, encoding="utf-8")
  return str(tmp_path)


DEMO = """\
  a1: !Template
    answer_choices: '{{ option1 }} ||| {{ option2 }}'
    id: a1
    jinja: "{{ text }}\\nPick: {{ answer_choices | join(' or ') }} ||| {{ answer_choices[label] }}"
    metadata: !TemplateMetadata
      choices_in_prompt: true
      languages:
      - en
      metrics:
      - Accuracy
      original_task: true
    name: pick
    reference: ''
"""


# ---------------------------------------------------------------------------------------------
# The loader (no shared files needed)

def test_render_masks_pipes_strips_and_finds_the_gold_choice(tmp_path):
  template = pt.find_template(_write_templates(tmp_path, DEMO), "demo", "pick")
  example = {"text": "  A ||| B  ", "option1": "x", "option2": " y ", "label": 1}
  # `|||` inside a field does not split; each part and each choice is stripped.
  assert template.render(example) == ("A ||| B  \nPick: x or y", ["x", "y"], 1)
  assert template.apply(example) == ("A ||| B  \nPick: x or y", ["y"])
  # promptsource's quirk, kept: the prompt sees the choices unmasked, so a choice holding `|||`
  # splits the prompt (run_eval.py then fails its target-in-choices check, as render does).
  example = {"text": "t", "option1": "x |||", "option2": "y", "label": 1}
  assert template.choices(example) == ["x |||", "y"]
  assert template.apply(example) == ("t\nPick: x", ["or y", "y"])
  with pytest.raises(pt.TemplateError, match="not one of the answer choices"):
    template.render(example)


def test_variables_are_truncated_as_promptsource_does(tmp_path):
  template = pt.find_template(_write_templates(tmp_path, DEMO), "demo", "pick")
  words = " ".join(["word"] * 600)  # 2,999 characters: longer than 2,048 + jinja's leeway of 5
  text, choices, _ = template.render({"text": words, "option1": "a", "option2": "b", "label": 0})
  prompt = text.split("\nPick:")[0]
  # truncate(2048): cut to 2,045 characters, back to the last space, then '...'.
  assert prompt == " ".join(["word"] * 409) + "..." and len(prompt) == 2047
  assert choices == ["a", "b"]  # answer_choices are not truncated
  short = " ".join(["word"] * 410)  # 2,049 characters: within the leeway, kept whole
  assert template.render({"text": short, "option1": "a", "option2": "b", "label": 0}
                         )[0].startswith(short + "\n")


@pytest.mark.parametrize("body,name,example,message", [
    (DEMO.replace("||| {{ answer_choices[label] }}", ""), "pick",
     {"text": "t", "option1": "a", "option2": "b", "label": 0}, "no '|||' between input"),
    (DEMO, "pick", {"text": "t", "option1": "a", "option2": "b", "label": 0,
                    "answer_choices": "x"}, "reserves"),
    (DEMO.replace("{{ answer_choices[label] }}", "{{ option1 }}!"), "pick",
     {"text": "t", "option1": "a", "option2": "b", "label": 0}, "not one of the answer choices"),
    (DEMO.replace("join(' or ')", "highlight"), "pick",
     {"text": "t", "option1": "a", "option2": "b", "label": 0}, "No filter named 'highlight'"),
    # Jinja2's sandbox: a template cannot reach Python internals.
    (DEMO.replace("{{ text }}", "{{ ''.__class__.__mro__ }}"), "pick",
     {"text": "t", "option1": "a", "option2": "b", "label": 0}, "unsafe"),
])
def test_render_errors_name_file_and_template(tmp_path, body, name, example, message):
  template = pt.find_template(_write_templates(tmp_path, body), "demo", name)
  with pytest.raises(pt.TemplateError, match=r"demo/templates\.yaml: template 'pick'.*" + message):
    template.render(example)


def test_file_errors_name_the_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="XP3_PROMPTSOURCE_DIR"):
    pt.find_template(str(tmp_path), "nothing", "pick")
  root = _write_templates(tmp_path, DEMO)
  with pytest.raises(pt.TemplateError, match=r"demo/templates\.yaml: no template named 'GPT'.*"
                                             r"\['pick'\]"):
    pt.find_template(root, "demo", "GPT")
  for i, (body, message) in enumerate([
      (DEMO + DEMO.replace("a1:", "a2:"), "two templates are named 'pick'"),
      ("  a1: !Template\n    name: [unclosed\n", "not a promptsource templates file"),
      ("  a1: {name: pick, jinja: x}\n", "is not a !Template")]):
    bad = _write_templates(tmp_path / str(i), body)
    with pytest.raises(pt.TemplateError, match=message):
      pt.find_template(bad, "demo", "pick")


def test_variant_names():
  assert pt.variant_names("GPT-3 style", "fr", "mt") == ("GPT-3 style_frmt",)
  assert pt.variant_names("C1 or C2? premise, so/because…", "zh", "ht") == (
      "C1 or C2? premise, so/because…_zhht", "C1 or C2? premise_zhht")


# ---------------------------------------------------------------------------------------------
# The paper's templates on the bundled samples, through the evaluation tasks

_rendered = eval_tasks.rendered_examples  # (inputs, choices, gold index) per example of a task


# (task, example index) -> promptsource's (inputs, choices, gold index); one to three templates per
# dataset, with the awkward ones: COPA's so/because (double space, no full stop removed),
# Winograd's `_`, StoryCloze's line breaks, CB's own label order, RTE's Yes/No crowdsource.
EXPECTED = {
    ("xnli_fr_gpt_3_style", 0): (
        "La boulangerie du coin ferme le lundi.\nQuestion: On ne peut pas acheter de pain à la "
        "boulangerie du coin le lundi. True, False, or Neither?", ["True", "Neither", "False"], 0),
    ("xnli_fr_guaranteed_possible_impossible", 1): (
        "Assume it is true that Paul a commencé à apprendre le piano l'année dernière. \n\n"
        "Therefore, \"Paul veut devenir pianiste professionnel.\" is guaranteed, possible, or "
        "impossible?", ["Guaranteed", "Possible", "Impossible"], 1),
    ("xcopa_zh_c1_or_c2_premise_so_because", 0): (
        "\"他摔倒了。\" or \"他得到了一块糖。\"? 孩子哭了起来。  because",
        ["他摔倒了。", "他得到了一块糖。"], 0),
    ("xcopa_zh_c1_or_c2_premise_so_because", 1): (
        "\"冷风吹进了房间。\" or \"房间变得更热了。\"? 我打开了窗户。  so",
        ["冷风吹进了房间。", "房间变得更热了。"], 0),
    ("xcopa_sw_best_option", 0): (
        "Mtoto alianza kulia. \n\nWhat's the best option?\n- Alianguka chini.\n- Alipewa pipi.\n\n"
        "We are looking for  a cause", ["Alianguka chini.", "Alipewa pipi."], 0),
    ("xstory_cloze_hi_story_continuation_and_options", 0): (
        "What is a possible continuation for the following story ? \n\n"
        "राहुल अपनी माँ के लिए केक बनाना चाहता था।\nउसने आटा, अंडे और चीनी खरीदी।\n"
        "उसने इंटरनेट पर मिली विधि का पालन किया।\nकेक ओवन से नरम और सुनहरा निकला।\n\n"
        "Choose from the following options:\n- उसकी माँ को केक बहुत पसंद आया।\n"
        "- राहुल ने केक कूड़े में फेंक दिया क्योंकि वह बहुत अच्छा था।",
        ["उसकी माँ को केक बहुत पसंद आया।",
         "राहुल ने केक कूड़े में फेंक दिया क्योंकि वह बहुत अच्छा था।"], 0),
    ("xstory_cloze_sw_answer_given_options", 0): (
        "Juma alitaka kumpikia mama yake keki. Alinunua unga, mayai na sukari. Alifuata "
        "maelekezo aliyoyapata mtandaoni. Keki ilitoka jikoni ikiwa laini na nzuri. What is a "
        "possible continuation for the story given the following options ? - Mama yake aliipenda "
        "sana keki hiyo.\n- Juma aliitupa keki kwa sababu ilikuwa nzuri mno.",
        ["Mama yake aliipenda sana keki hiyo.",
         "Juma aliitupa keki kwa sababu ilikuwa nzuri mno."], 0),
    ("xwinograd_jp_underscore_refer_to", 0): (
        "ピアノは戸口を通らなかった。_が大きすぎたからだ。 What does the _ in the above sentence "
        "refer to? ピアノ or 戸口?", ["ピアノ", "戸口"], 0),
    ("xwinograd_en_true_or_false", 1): (
        "The _ in the sentence below refers to piano. True or False?\nThe piano would not go "
        "through the doorway because the _ was too narrow.", ["True", "False"], 1),
    ("xwinograd_fr_replace", 0): (
        "Le piano ne passait pas par la porte parce que le _ était trop large.\nReplace the _ in "
        "the above sentence with the correct option: \n- piano\n- porte", ["piano", "porte"], 0),
    ("anli_r1_can_we_infer", 0): (
        "Suppose Greenfield Bridge is a stone arch bridge over the river Wend, completed in 1884. "
        "It carries a single-lane road and was restored in 1992. Can we infer that \"The bridge "
        "was built in the nineteenth century.\"? Yes, no, or maybe?", ["Yes", "Maybe", "No"], 0),
    ("super_glue_cb_gpt_3_style", 1): (
        "She said she was not sure whether the train would be on time.\nQuestion: the train "
        "would be on time True, False, or Neither?", ["True", "False", "Neither"], 2),
    ("super_glue_rte_mnli_crowdsource", 0): (
        "The company announced on Monday that it will open a new factory in Poland, creating 500 "
        "jobs. Using only the above description and what you know about the world, is \"A new "
        "factory will be opened in Poland.\" definitely correct? Yes or no?", ["Yes", "No"], 0),
    ("super_glue_copa_c1_or_c2_premise_so_because", 0): (
        "\"He had fallen off his bike.\" or \"He had been given a present.\"? The child started "
        "to cry.  because", ["He had fallen off his bike.", "He had been given a present."], 0),
    ("winogrande_xl_stand_for", 0): (
        "In the sentence below, does the _ stand for Sarah or Maria?\nSarah was a much better "
        "cook than Maria, so _ always made the holiday dinner.", ["Sarah", "Maria"], 0),
    ("story_cloze_2016_choose_story_ending", 0): (
        "Read the following story :\n\nTom wanted to bake a cake for his mother.\nHe bought "
        "flour, eggs and sugar.\nHe followed a recipe he found online.\nThe cake came out of the "
        "oven golden and soft.\n\nChoose a possible ending for the previous story from the "
        "following options: \n- His mother loved the cake.\n- Tom threw the cake in the bin "
        "because it was perfect.",
        ["His mother loved the cake.", "Tom threw the cake in the bin because it was perfect."],
        0),
}


def test_tasks_render_promptsource_strings(paper_prompts):
  for (name, index), expected in EXPECTED.items():
    assert _rendered(name)[index] == expected, name
  assert eval_tasks.prompt_set_used("xnli_fr_gpt_3_style") == eval_prompts.PromptSet(
      paper_prompts, "en")


def test_translated_variants(paper_prompts, monkeypatch):
  monkeypatch.setenv("XP3_PROMPTSOURCE_VARIANT", "mt")
  # As machine-translated: no-break spaces before French punctuation, HTML entities left in.
  assert _rendered("xnli_fr_gpt_3_style")[0] == (
      "La boulangerie du coin ferme le lundi. Question\xa0: On ne peut pas acheter de pain à la "
      "boulangerie du coin le lundi. Vrai, faux ou ni l&#39;un ni l&#39;autre\xa0?",
      ["Vrai", "Ni", "Faux"], 0)
  # 'C1 or C2? premise_zhmt': the translated file cuts the name at its comma.
  assert _rendered("xcopa_zh_c1_or_c2_premise_so_because")[0] == (
      "“他摔倒了。”还是“他得到了一块糖。”？ 孩子哭了起来。  因为", ["他摔倒了。", "他得到了一块糖。"], 0)
  # English datasets and English configs keep the English templates.
  assert _rendered("anli_r1_can_we_infer")[0] == EXPECTED[("anli_r1_can_we_infer", 0)]
  monkeypatch.setenv("XP3_PROMPTSOURCE_VARIANT", "ht")
  assert _rendered("xwinograd_zh_true_or_false")[0] == (
      "在以下的句子中，_ 指的是钢琴。 对否? 钢琴搬不进门口，因为_太宽了。", ["True", "False"], 0)
  with pytest.raises(pt.TemplateError, match=r"xcopa/sw/templates\.yaml: no template named "
                                             r"'best_option_swht'"):
    _rendered("xcopa_sw_best_option")  # XCOPA Swahili has machine translations only
  monkeypatch.setenv("XP3_PROMPTSOURCE_VARIANT", "xx")
  with pytest.raises(ValueError, match="XP3_PROMPTSOURCE_VARIANT"):
    eval_prompts.prompt_set()


def test_prompt_set_settings(monkeypatch):
  monkeypatch.delenv("XP3_PROMPTSOURCE_DIR", raising=False)
  monkeypatch.delenv("XP3_PROMPTSOURCE_VARIANT", raising=False)
  assert eval_prompts.prompt_set() == eval_prompts.PromptSet(None, "en")
  assert not eval_prompts.prompt_set().is_paper
  assert "bundled own-wording prompts (not the paper's" in eval_prompts.prompt_set().describe()
  monkeypatch.setenv("XP3_PROMPTSOURCE_VARIANT", "mt")
  with pytest.raises(ValueError, match="needs XP3_PROMPTSOURCE_DIR"):
    eval_prompts.prompt_set()
  # Gin macros win over the environment, as for the other XP3_* settings.
  with gin.unlock_config():
    gin.parse_config("XP3_PROMPTSOURCE_DIR = '/ps/templates'\nXP3_PROMPTSOURCE_VARIANT = 'EN'")
  try:
    assert eval_prompts.prompt_set() == eval_prompts.PromptSet("/ps/templates", "en")
    assert eval_prompts.prompt_set().is_paper
  finally:
    with gin.unlock_config():
      gin.clear_config()


def test_every_task_has_its_templates(templates_dir):
  """All 235 tasks (not only the bundled ones) find their English and MT templates, which parse;
  HT templates exist for the languages the xP3mt evaluation translated by hand."""
  english = eval_prompts.PromptSet(templates_dir, "en")
  mt = eval_prompts.PromptSet(templates_dir, "mt")
  ht = eval_prompts.PromptSet(templates_dir, "ht")
  with_ht = set()
  for name, info in eval_tasks.TASK_INFOS.items():
    template = eval_tasks.promptsource_template(name, english)
    assert template.name == info.paper_prompt
    translated = eval_tasks.promptsource_template(name, mt)
    assert translated.name.startswith(info.paper_prompt.split(",")[0])
    assert (translated is template) == (info.language == "en"), name
    for t in (template, translated):  # they compile
      assert t._prompt_template and t._choices_template  # pylint: disable=protected-access
    try:
      if eval_tasks.promptsource_template(name, ht) is not template:
        with_ht.add((info.dataset, info.config))
    except pt.TemplateError:
      pass
  assert with_ht == {("xnli", c) for c in "ar es fr hi sw ur vi zh".split()} | {
      ("xcopa", "zh"), ("xstory_cloze", "zh"), ("xwinograd", "zh")}


def test_every_bundled_task_equals_promptsource(paper_prompts, monkeypatch):
  """All (prompt, choice) pairs of the bundled samples, each variant, against promptsource's."""
  reference = collections.defaultdict(dict)
  for r in json.loads(gzip.decompress(REFERENCE.read_bytes())):
    reference[(r["dataset"], r["config"], r["prompt"], r["variant"])][r["example_index"]] = (
        r["inputs"], r["choices"], r["label"])
  counts = collections.Counter()
  for variant in ("en", "mt", "ht"):
    monkeypatch.setenv("XP3_PROMPTSOURCE_VARIANT", variant)
    for name in eval_tasks.find_tasks(bundled_only=True):
      info = eval_tasks.get_eval_task_info(name)
      translated = variant != "en" and info.language != "en"
      expected = reference.get((info.dataset, info.config, info.paper_prompt,
                                variant if translated else "en"))
      if expected is None:  # promptsource has no such translation: the task says so
        with pytest.raises(pt.TemplateError, match="no template named"):
          _rendered(name)
        continue
      rendered = _rendered(name)
      assert dict(enumerate(rendered)) == expected, (name, variant)
      counts[variant] += sum(len(choices) for _, choices, _ in rendered)
  # The English templates: 2,435 (prompt, choice) pairs on the 205 bundled examples.
  assert counts == {"en": 2435, "mt": 2435, "ht": 1795}


def test_paper_numbers_only_beside_the_papers_prompts(templates_dir, monkeypatch):
  """Rows follow the prompts each task last rendered with."""
  accuracies = {"xnli_fr_gpt_3_style": 50.0, "super_glue_rte_guaranteed_true": 60.0}
  monkeypatch.delenv("XP3_PROMPTSOURCE_DIR", raising=False)
  monkeypatch.delenv("XP3_PROMPTSOURCE_VARIANT", raising=False)
  for name in accuracies:  # the bundled prompts
    _rendered(name)
  rows = aggregation.table_rows(accuracies, model_size="xxl")
  assert [r.paper_accuracy for r in rows] == [None, None]
  assert all("bundled own-wording" in r.prompts for r in rows)
  monkeypatch.setenv("XP3_PROMPTSOURCE_DIR", templates_dir)
  for name in accuracies:
    _rendered(name)
  rows = aggregation.table_rows(accuracies, model_size="xxl")
  assert [r.paper_accuracy for r in rows] == [59.52, 83.03]
  assert all(r.prompts.startswith("promptsource templates (English") for r in rows)
  monkeypatch.setenv("XP3_PROMPTSOURCE_VARIANT", "mt")
  _rendered("xnli_fr_gpt_3_style")  # the paper's main numbers are for the English prompts
  assert aggregation.table_rows(accuracies, model_size="xxl")[0].paper_accuracy is None
