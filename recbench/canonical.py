"""Key-order-free forms of what the workflow hands its jobs, so that only a real change reruns one.

Snakemake reruns a job when the text of its ``params:`` differs from the text it recorded when
the job last ran (``.snakemake/metadata/<output>``, a list of ``repr(value)``, one per param).
``repr`` of a dict lists its keys in insertion order, i.e. in the order the YAML config wrote
them, so the same config with its keys reordered (PyYAML's ``safe_dump`` sorts them; an editor
may) read as changed params and reran every job, fits included. ``canonical`` rebuilds a value
with every mapping's keys sorted, at every depth, so its ``repr`` is the same whatever the key
order: every rule's params pass through it (``workflow/rules/*.smk``).

Why sorted dicts and not a JSON text: the scripts receive the same Python values as before (no
decoding; tuples, integer keys and the int/float distinction survive, which JSON would lose), and
a string param is not safe to hand to Snakemake anyway, since it formats a plain string param's
``{braces}`` as wildcards.

Nothing downstream may depend on a mapping's key order, then: where an order matters, it is a
list (``seeds``, ``evaluation.ks``, a study's grid values), or is decided by the code, e.g. the
reports' model columns (``model_order``: the paper's order first) and a tuning study's draws
(``recbench.protocol.tuning.search_order``: the model's parameter declarations). The order of the
``datasets:`` and of models outside the paper's is the order the reports list them in, a list
the report rules receive as such: reordering those reruns the report jobs (seconds), no fit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

#: the column order of the paper's Table 2 (our reports follow it, then any other model)
PAPER_MODEL_ORDER = ("SASRec", "BERT4Rec", "MRGSRec", "SVD", "Random", "PopRnd", "LightGCN",
                     "UltraGCN", "CREATE")


def canonical(value):
    """``value`` with every mapping's keys sorted, at every depth; a callable (a params
    function) is wrapped so that what it returns is.

    Lists and tuples keep their order (an order there is meant) and their type; scalars are
    returned as they are. A set is refused: its ``repr`` order changes from one process to the
    next (string hashing is salted), so a param holding one would rerun its job for nothing.
    """
    if callable(value):
        return _canonical_function(value)
    if isinstance(value, Mapping):
        try:
            keys = sorted(value, key=lambda k: (type(k).__name__, k))
        except TypeError as e:
            raise TypeError(f"canonical: the keys {list(value)!r} cannot be sorted ({e})") from e
        return {k: canonical(value[k]) for k in keys}
    if type(value) in (list, tuple):
        return type(value)(canonical(v) for v in value)
    if isinstance(value, (set, frozenset)):
        raise TypeError(f"canonical: a set has no stable text across processes: {value!r}; "
                        "pass a sorted list")
    return value


def _canonical_function(func: Callable) -> Callable:
    # functools.wraps sets __wrapped__: Snakemake reads the wrapped function's signature
    # (inspect.signature follows it) to pass wildcards, input, threads, ... as before
    @functools.wraps(func)
    def canonical_param(*args, **kwargs):
        return canonical(func(*args, **kwargs))

    return canonical_param


def model_order(models: list[str]) -> list[str]:
    """The reports' model order: the paper's column order first, then any other model in the
    order given (the config's)."""
    known = [m for m in PAPER_MODEL_ORDER if m in models]
    return known + [m for m in models if m not in known]
