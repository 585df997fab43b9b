"""Transports: OSC, MIDI and watch folders turn outside events into calls on bridge.commands.Controls."""
