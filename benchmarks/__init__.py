"""Speed, memory and scale benchmarks: each module is also a script (``python
benchmarks/bench_eval.py``), ``run_all.py`` runs them all into ``results/benchmarks.md``.

They import the installed project, this package included (``pip install -e .``, as the README's
quick start does), and measure each memory case in a fresh process (``_common.in_fresh_process``).
"""
