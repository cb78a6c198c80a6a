"""Neural building blocks shared by the sequential, graph and hybrid models."""

from recbench.nn.encoders import SequenceEncoder
from recbench.nn.losses import full_ce, scalable_ce

__all__ = ["SequenceEncoder", "full_ce", "scalable_ce"]
