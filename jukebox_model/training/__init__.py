"""Training loops, data and distributed helpers for the VQ-VAE and priors."""
