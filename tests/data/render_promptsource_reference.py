"""Writes promptsource_reference.json.gz: the bundled evaluation samples rendered by promptsource.

Not part of the test suite (promptsource does not install on the project's Python). It ran with
the xp3mt branch of Muennighoff/promptsource (`promptsource/templates.py` on PYTHONPATH, with
pandas and setuptools' pkg_resources beside it, its `templates/` folder being
../shared/promptsource/templates), the way the paper's t-zero `run_eval.py` renders:
`Template.apply(example)` -> (input, [target]), `get_answer_choices_list(example)`, gold = index
of the target among the choices. English templates for every config ('en'); the `_<lang>mt` /
`_<lang>ht` templates where the config's file has them ('mt' / 'ht').

  python tests/data/render_promptsource_reference.py xp3_tasks/data/eval \
      tests/data/promptsource_reference.json.gz
"""
import gzip
import json
import os
import sys

from promptsource.templates import DatasetTemplates  # pylint: disable=import-error

PROMPTS = {  # RECIPE.md section 4
    "nli3": ["GPT-3 style", "MNLI crowdsource", "can we infer", "justified in saying",
             "guaranteed/possible/impossible"],
    "rte": ["MNLI crowdsource", "GPT-3 style", "does it follow that", "should assume",
            "guaranteed true"],
    "copa": ["best_option", "C1 or C2? premise, so/because…", "i_am_hesitating", "cause_effect",
             "plausible_alternatives"],
    "story": ["Story Continuation and Options", "Answer Given options", "Novel Correct Ending",
              "Generate Ending", "Choose Story Ending"],
    "winograd": ["underscore refer to", "Replace", "stand for", "does underscore refer to",
                 "True or False"],
}
# data folder -> (English templates, translated templates or None, prompt family)
COLLECTIONS = {
    "xnli": ("xnli/en", "xnli/{}", "nli3"),
    "xcopa": ("xcopa/en", "xcopa/{}", "copa"),
    "xstory_cloze": ("Muennighoff/xstory_cloze/en", "Muennighoff/xstory_cloze/{}", "story"),
    "xwinograd": ("Muennighoff/xwinograd/en", "Muennighoff/xwinograd/{}", "winograd"),
    "anli": ("anli", None, "nli3"),
    "super_glue/cb": ("super_glue/cb", None, "nli3"),
    "super_glue/rte": ("super_glue/rte", None, "rte"),
    "super_glue/copa": ("super_glue/copa", None, "copa"),
    "winogrande": ("winogrande/winogrande_xl", None, "winograd"),
    "story_cloze": ("story_cloze/2016", None, "story"),
}


def main(eval_dir: str, out_path: str) -> None:
  rows = []
  for dataset in sorted(os.listdir(eval_dir)):
    if not os.path.isdir(os.path.join(eval_dir, dataset)):
      continue
    for config in sorted(os.listdir(os.path.join(eval_dir, dataset))):
      english, translated, family = COLLECTIONS.get(f"{dataset}/{config}") or COLLECTIONS[dataset]
      folder = os.path.join(eval_dir, dataset, config)
      (filename,) = os.listdir(folder)
      with open(os.path.join(folder, filename), encoding="utf-8") as f:
        examples = [json.loads(line) for line in f if line.strip()]
      sets = {"en": DatasetTemplates(english)}
      if translated and config != "en":
        sets["mt"] = sets["ht"] = DatasetTemplates(translated.format(config))
      for variant, templates in sets.items():
        for prompt in PROMPTS[family]:
          if variant == "en":
            name = prompt
          else:
            names = [n for n in (f"{prompt}_{config}{variant}",
                                 f"{prompt.split(',')[0]}_{config}{variant}")
                     if n in templates.all_template_names]
            if not names:
              continue
            name = names[0]
          template = templates[name]
          for index, example in enumerate(examples):
            text, (target,) = template.apply(example)
            choices = template.get_answer_choices_list(example)
            rows.append({"dataset": dataset, "config": config, "variant": variant,
                         "prompt": prompt, "template": name, "example_index": index,
                         "inputs": text, "choices": choices, "label": choices.index(target)})
  with gzip.GzipFile(out_path, "wb", mtime=0) as f:
    f.write(json.dumps(rows, ensure_ascii=False, indent=0, sort_keys=True).encode("utf-8"))


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2])
