"""Training: the one loop every baseline uses (:mod:`tiktalk.training.trainer`)."""
