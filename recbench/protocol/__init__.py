"""The protocol layer: the config and its checks, tuning, studies, reading selection, the
runner's fit/evaluate entry points, statistics and verdicts.

The protocol imports the core (``recbench.*``) and never the reporting (``recbench.reporting``);
the core imports neither (tests/recbench/test_layers.py).
"""
