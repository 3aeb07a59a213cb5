"""The command-line entry points, one module per command, all started by `runner.run`.

`python -m xmtf.<command>` (train, eval, infer, generate, convert, plan, cache_tasks) runs
`xmtf.cli.<command>.main`; the library functions they call stay in `xmtf.<command>`, where gin
binds them by T5X-style names (`xmtf.train.train`, `xmtf.eval.evaluate_checkpoints`, ...).
"""
