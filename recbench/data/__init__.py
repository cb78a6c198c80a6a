"""Data layer: download and verify raw files, parse them into one canonical log, split it."""
