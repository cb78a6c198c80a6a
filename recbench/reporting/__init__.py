"""The reporting layer: one module per report, rendered from the protocol's results.

Reporting may import the core (``recbench.*``) and the protocol (``recbench.protocol``); neither
imports reporting (tests/recbench/test_layers.py).
"""
