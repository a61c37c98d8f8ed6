"""The embedded demo dataset: synthetic videos, release files and a mini C3KG."""

from tiktalk.demo.generate import generate_demo

__all__ = ["generate_demo"]
