"""The DAW bridge: OSC/MIDI/watch-folder server around the model worker."""

__version__ = "0.1.0"
