"""TikTalk reproduction pipeline: the importable package behind the Snakemake DAG."""

__version__ = "0.1.0"
