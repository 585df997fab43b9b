"""Sampling: window schedules, logit filtering and (to come) the cached token loop. Separate from the model."""
