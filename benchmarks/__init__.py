"""Side-by-side benchmarks of xmtf against Hugging Face transformers (`python -m benchmarks.run`).

Modules: `configs` (model shapes and sizes), `inputs` (the one synthetic batch every side uses),
`workers` (each measured side in its own process: train steps, decoding, input pipeline),
`report` (Markdown table and JSON), `run` (the command line that interleaves the workers).
"""
