"""The scalable factored-attention transformer of the Jukebox priors (spec §3.5)."""
