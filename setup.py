"""Installs xmtf (the trainer), xp3_tasks (the SeqIO registry) and mixtures.

Pins are ranges that resolve and import together on Python 3.11: seqio 0.0.20 needs
tensorflow-text, which must match TensorFlow's minor version; Apache Beam (extra `beam`) caps
protobuf below 7, so sentencepiece stays below 0.2.3 (whose generated code needs protobuf 7).
"""
import setuptools

INSTALL_REQUIRES = [
    "jax>=0.10.2,<0.11",
    "jaxlib>=0.10.2,<0.11",
    "flax>=0.12.8,<0.13",
    "optax>=0.2.8,<0.3",
    "orbax-checkpoint>=0.12.8,<0.13",
    "seqio==0.0.20",
    "tensorflow>=2.21,<2.22",
    "tensorflow-text>=2.21,<2.22",
    "tensorflow-datasets>=4.9.10,<5",
    "gin-config>=0.5,<0.6",
    "sentencepiece>=0.2.0,<0.2.3",
    "protobuf>=5.29,<7",
    "tensorstore>=0.1.86,<0.2",
    "msgpack>=1.0",
    "numpy>=2.0,<3",
    "matplotlib>=3.8,<4",
    "tensorboard>=2.20,<3",
    "jinja2>=3.0,<4",   # promptsource templates (xp3_tasks/promptsource_templates.py)
    "pyyaml>=6.0,<7",
    "pyarrow>=14",      # the Hugging Face hub's parquet files (xmtf/fileio.read_records)
    "sacrebleu>=2.4,<3",  # spBLEU, chrF++ (xp3_tasks/gen_metrics.py)
    "rouge-score>=0.1.2,<0.2",  # ROUGE-L / Lsum (xp3_tasks/gen_metrics.py)
]

EXTRAS_REQUIRE = {
    "test": [
        "pytest>=8",
        "pytest-xdist>=3.5",
        "torch==2.13.0",
        "transformers>=5.23,<6",
        "safetensors>=0.6",
        "apache-beam>=2.77,<3",
        "google-crc32c>=1.5",
        "torchmetrics>=1.4,<2",  # the SQuAD v1.1 script the F1/EM tests compare with
    ],
    "beam": ["apache-beam[gcp]>=2.77,<3", "google-crc32c>=1.5"],
    "gpu": ["jax[cuda12]>=0.10.2,<0.11"],
    # libtpu: `python -m xmtf.plan --tpu=...` compiles with the TPU compiler on any machine.
    "tpu": ["jax[tpu]>=0.10.2,<0.11"],
}

setuptools.setup(
    name="xmtf",
    version="0.1.0",
    description="Finetune mT5 into mT0 on xP3 with JAX: tasks, mixtures, trainer, evaluators.",
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=["xmtf", "xmtf.*", "xp3_tasks", "xp3_tasks.*"]),
    py_modules=["mixtures"],
    include_package_data=True,
    package_data={"xp3_tasks": ["data/**/*", "data/datasets.yaml"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
