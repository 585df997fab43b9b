"""Reading what the bridge does not control: files (clips, presets, sidecars, journal records) and
values from peers, each checked before it is used; folder confinement."""
