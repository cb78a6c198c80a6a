"""One module per baseline model; each registers itself with ``@register("<Name>")``.

Modules here are imported automatically by ``recbench.registry.discover``: adding a baseline is
adding a module and a config entry. ``params.py`` declares the shipped models' Params
without torch (``recbench.registry.declare``).
"""
