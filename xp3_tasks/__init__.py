"""xP3 / xP3mt / xP3x as SeqIO tasks; importing the package registers them.

  import xp3_tasks                      # registers the training tasks (see tasks.py)
  xp3_tasks.query(language="sw", cluster="qa")   # metadata of matching tasks

Where the data lives and the vocabulary: config.py (gin macros / environment variables,
default: the bundled sample in xp3_tasks/data). Mixtures: the top-level module `mixtures`.
"""
from xp3_tasks import tasks
from xp3_tasks.metadata import get as get_task_info  # noqa: F401
from xp3_tasks.metadata import query  # noqa: F401

REGISTERED = tasks.register_all()

from xp3_tasks import eval_tasks  # noqa: E402,F401  (registers the evaluation tasks)
from xp3_tasks import templated_tasks  # noqa: E402  (raw data + templates, when configured)

REGISTERED.update(templated_tasks.register_from_settings())
