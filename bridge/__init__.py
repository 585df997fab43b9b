"""The DAW bridge: OSC/MIDI/watch-folder server around the model worker."""
