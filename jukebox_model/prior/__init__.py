"""The Jukebox priors: conditioners, the autoregressive transformer wrapper and their composition."""
