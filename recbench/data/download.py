"""Streaming downloads that are verified before they are trusted.

``download`` streams a URL (http, https or file) to a temporary file beside the destination with a
progress bar, then checks, in order: that the server did not send an HTML page instead of data,
the expected size, the md5 checksum, and that the archive or table is readable to its end. Only
then is the file renamed to its final name. Any failure removes the temporary file and raises a
``DownloadError`` naming the URL, what was expected and what to do.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from recbench.errors import DownloadError
from recbench.io import atomic_path

log = logging.getLogger(__name__)

CHUNK = 1 << 20
FORMATS = ("zip", "gzip", "parquet", None)


def md5sum(path: str | Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _looks_like_html(head: bytes) -> bool:
    text = head.lstrip().lower()
    return text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head"))


def check_format(path: Path, fmt: str | None, url: str) -> None:
    """Read the whole file as ``fmt`` so a truncated or corrupt archive fails here, not later."""
    hint = f"The copy from {url} is corrupt or truncated: delete it and run again."
    try:
        if fmt == "zip":
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            if bad is not None:
                raise DownloadError(f"{path}: member {bad!r} of the zip fails its CRC check. {hint}")
        elif fmt == "gzip":
            with gzip.open(path, "rb") as f:
                while f.read(CHUNK):
                    pass
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            # The footer alone says nothing of the data pages: decode every batch (streamed).
            for _ in pq.ParquetFile(path).iter_batches():
                pass
    except DownloadError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, Exception) as exc:  # noqa: BLE001
        raise DownloadError(f"{path}: not a readable {fmt} file ({exc}). {hint}") from exc


def download(
    url: str,
    dest: str | Path,
    *,
    md5: str | None = None,
    size: int | None = None,
    fmt: str | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` and verify it; return ``dest``. See the module docstring."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    dest = Path(dest)
    try:
        response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 - URL comes from config
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadError(
            f"Could not open {url}: {exc}. Check the network and the dataset's `url:` in the "
            "config, or put the file at the destination by hand."
        ) from exc

    with response, atomic_path(dest) as tmp:
        content_type = response.headers.get("Content-Type", "") or ""
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else size
        with open(tmp, "wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress
        ) as bar:
            head = b""
            while True:
                try:
                    block = response.read(CHUNK)
                except OSError as exc:
                    raise DownloadError(f"Download of {url} broke off: {exc}. Run again.") from exc
                if not block:
                    break
                if len(head) < 512:
                    head += block[: 512 - len(head)]
                out.write(block)
                bar.update(len(block))

        if "text/html" in content_type.lower() or _looks_like_html(head):
            raise DownloadError(
                f"{url} returned an HTML page instead of data (the server may need a login, or "
                "the URL moved). Open the URL in a browser, fix the dataset's `url:` in the "
                "config, or download the file by hand to " + str(dest)
            )
        got_size = tmp.stat().st_size
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and got_size != int(declared):
            raise DownloadError(
                f"Download of {url} broke off: the server announced {int(declared):,} bytes, "
                f"got {got_size:,}. Run again."
            )
        if got_size == 0:
            raise DownloadError(f"{url} returned an empty file. Check the URL and run again.")
        if size is not None and got_size != size:
            raise DownloadError(
                f"{url}: expected {size:,} bytes, got {got_size:,} (truncated or a different "
                "release). Run again; if it persists, check the dataset's `url:` and `size:`."
            )
        if md5 is not None:
            got = md5sum(tmp)
            if got != md5.lower():
                raise DownloadError(
                    f"{url}: md5 {got} does not match the expected {md5}. The file is corrupt or "
                    "a different release: run again, or correct the dataset's `md5:` in the "
                    "config if the source published a new version."
                )
        check_format(tmp, fmt, url)
    log.info("downloaded %s -> %s (%s bytes)", url, dest, f"{got_size:,}")
    return dest

