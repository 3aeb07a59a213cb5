"""Builds xP3-style data (`<lang>/xp3_<dataset>_<config>_<split>_<template>.jsonl`, merged files,
the manifest) from raw Hugging Face datasets and promptsource templates: `python -m
xp3_tasks.build`. Upstream of the tasks: nothing in xp3_tasks imports this package.
"""
