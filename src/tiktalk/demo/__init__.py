"""The embedded demo dataset: synthetic videos, release files and a mini C3KG
(:func:`tiktalk.demo.generate.generate_demo`)."""
