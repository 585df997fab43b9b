"""The session a producer shapes: its parameters, presets, the MIDI map, and the state around them
(prime, tempo followed from the DAW)."""
