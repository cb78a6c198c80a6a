"""Errors that stop a run with a message naming the problem and the fix."""


class BenchError(Exception):
    """Base class: every message says what was wrong, where, and what to do."""


class ConfigError(BenchError):
    """A config key is missing, unknown or out of range."""


class DataError(BenchError):
    """A raw or prepared file is missing, corrupt or not in the expected format."""


class DownloadError(DataError):
    """A download failed verification (checksum, size, format)."""


class TrainingError(BenchError):
    """Training diverged (NaN or infinite loss) or could not proceed."""


class ResourceError(BenchError):
    """A step would need more memory than the machine has; refused before it starts."""


class CheckpointError(BenchError):
    """A training checkpoint is unreadable (truncated, or not one of the training loop's)."""


class ArtefactError(BenchError):
    """A saved model is unreadable, incomplete, of another format, class or catalogue."""
