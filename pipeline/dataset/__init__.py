"""Building a data set's manifest and its companions: source -> filter -> label -> save,
image checks, the demo's phantom images and the structured pre-read context tables.

Imports neither stage.
"""
