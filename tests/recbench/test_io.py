import os
import stat

import pytest

from recbench.io import atomic_path, write_json


def test_atomic_write_has_usual_permissions(tmp_path):
    write_json({"a": 1}, tmp_path / "x.json")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o666 & ~umask


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "y.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
