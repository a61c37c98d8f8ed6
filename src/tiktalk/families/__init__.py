"""The baseline families, one torch-free descriptor module each (:mod:`tiktalk.families.family`)."""
