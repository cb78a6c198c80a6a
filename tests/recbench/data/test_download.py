"""download(): good files land intact; every bad one raises DownloadError and leaves nothing behind.

Files are served by a loopback HTTP server (a ThreadingHTTPServer on 127.0.0.1, an ephemeral
port, in a thread) that the ``server`` fixture starts and shuts down, and by ``file://`` URLs; no
other network is used.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recbench.data.download import download
from recbench.errors import DownloadError

from .fixtures import (
    HTML_PAGE,
    LoopbackServer,
    loopback_server,
    md5_of,
    truncated_copy,
    write_amazon_2014,
    write_ml1m_zip,
    write_yambda,
)


@pytest.fixture(scope="module")
def _module_server():
    with loopback_server() as srv:
        yield srv


@pytest.fixture
def server(_module_server):
    """The loopback server, with no routes left over from another test."""
    _module_server.routes.clear()
    yield _module_server
    _module_server.routes.clear()


@pytest.fixture
def src(tmp_path) -> Path:
    """Where the fixture files are built (never the destination folder)."""
    folder = tmp_path / "src"
    folder.mkdir()
    return folder


@pytest.fixture
def dest_dir(tmp_path) -> Path:
    return tmp_path / "dest"


def assert_nothing_left(folder: Path) -> None:
    """No final file and no temporary file: the folder is absent or empty."""
    leftovers = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert leftovers == [], f"files left behind in {folder}: {leftovers}"


def expect_failure(url: str, dest: Path, match: str | None = None, **kwargs) -> DownloadError:
    with pytest.raises(DownloadError) as info:
        download(url, dest, progress=False, **kwargs)
    msg = str(info.value)
    assert url in msg, f"message does not name the URL {url}: {msg}"
    if match is not None:
        assert match.lower() in msg.lower(), f"{match!r} not in: {msg}"
    assert_nothing_left(dest.parent)
    return info.value


# ----------------------------------------------------------------------------- good downloads


def source_file(src, kind: str):
    """A small file in the exact format of the sources of ``kind``, written under ``src``."""
    write, name = {"zip": (write_ml1m_zip, "ml-1m.zip"),
                   "gzip": (write_amazon_2014, "reviews_Beauty_5.json.gz"),
                   "parquet": (write_yambda, "likes.parquet")}[kind]
    return write(src / name)


@pytest.mark.parametrize("kind", ["zip", "gzip", "parquet"])
def test_good_download_over_http(server, src, dest_dir, kind):
    f = source_file(src, kind)
    url = server.serve(f"/files/{f.name}", f)
    dest = dest_dir / f.name
    out = download(url, dest, md5=md5_of(f), size=f.stat().st_size, fmt=kind, progress=False)
    assert out == dest
    assert dest.read_bytes() == f.read_bytes()
    assert sorted(p.name for p in dest_dir.iterdir()) == [f.name]  # no temporary file left


@pytest.mark.parametrize("kind", ["zip", "gzip", "parquet"])
def test_good_download_over_file_url(src, dest_dir, kind):
    f = source_file(src, kind)
    dest = dest_dir / "nested" / f.name
    out = download(f.as_uri(), dest, md5=md5_of(f), size=f.stat().st_size, fmt=kind, progress=False)
    assert out == dest
    assert dest.read_bytes() == f.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == [f.name]


def test_good_download_without_checks(server, src, dest_dir):
    """md5, size and fmt are optional: the bytes still arrive unchanged."""
    body = bytes(range(256)) * 10
    url = server.serve("/blob.bin", body)
    dest = download(url, dest_dir / "blob.bin", progress=False)
    assert dest.read_bytes() == body


def test_md5_is_case_insensitive(server, src, dest_dir):
    f = write_ml1m_zip(src / "ml-1m.zip")
    url = server.serve("/ml-1m.zip", f)
    dest = download(url, dest_dir / "ml-1m.zip", md5=md5_of(f).upper(), fmt="zip", progress=False)
    assert dest.read_bytes() == f.read_bytes()


# ----------------------------------------------------------------------------- verification failures


@pytest.mark.parametrize("via", ["http", "file"])
def test_md5_mismatch(server, src, dest_dir, via):
    f = write_ml1m_zip(src / "ml-1m.zip")
    url = server.serve("/ml-1m.zip", f) if via == "http" else f.as_uri()
    err = expect_failure(url, dest_dir / "ml-1m.zip", match="md5", md5="0" * 32, fmt="zip")
    assert "0" * 32 in str(err)
    assert md5_of(f) in str(err)  # the md5 actually received


@pytest.mark.parametrize("via", ["http", "file"])
def test_wrong_size(server, src, dest_dir, via):
    f = write_amazon_2014(src / "reviews_Beauty_5.json.gz")
    url = server.serve("/reviews.json.gz", f) if via == "http" else f.as_uri()
    size = f.stat().st_size
    err = expect_failure(url, dest_dir / "reviews_Beauty_5.json.gz", match="bytes", size=size + 1, fmt="gzip")
    assert f"{size + 1:,}" in str(err) and f"{size:,}" in str(err)


def test_size_checked_before_md5(server, src, dest_dir):
    """With a right md5 but a wrong size, the size is what is reported."""
    f = write_yambda(src / "likes.parquet")
    url = server.serve("/likes.parquet", f)
    expect_failure(url, dest_dir / "likes.parquet", match="expected", md5=md5_of(f), size=7, fmt="parquet")


@pytest.mark.parametrize("via", ["http", "file"])
@pytest.mark.parametrize("keep", [0.5, 0.95])
@pytest.mark.parametrize("fmt, write, name", [("zip", write_ml1m_zip, "ml-1m.zip"),
                                              ("gzip", write_amazon_2014,
                                               "reviews_Beauty_5.json.gz")])
def test_truncated_archive(server, src, dest_dir, via, keep, fmt, write, name):
    good = write(src / f"good.{fmt}")
    f = truncated_copy(good, src / name, keep=keep)
    url = server.serve(f"/{name}", f) if via == "http" else f.as_uri()
    expect_failure(url, dest_dir / name, match=fmt, fmt=fmt)


@pytest.mark.parametrize("fmt", ["zip", "gzip", "parquet", None])
def test_connection_cut_short(server, src, dest_dir, fmt):
    """The server announces the whole file but closes after half of it."""
    good = {
        "zip": lambda: write_ml1m_zip(src / "f"),
        "gzip": lambda: write_amazon_2014(src / "f"),
        "parquet": lambda: write_yambda(src / "f"),
        None: lambda: (src / "f").write_bytes(bytes(range(256)) * 40) and src / "f",
    }[fmt]()
    data = good.read_bytes()
    url = server.serve("/f", data[: len(data) // 2], announce=len(data))
    expect_failure(url, dest_dir / "f", fmt=fmt)


def test_html_page_with_html_content_type(server, dest_dir):
    url = server.serve("/ml-1m.zip", HTML_PAGE, content_type="text/html; charset=utf-8")
    expect_failure(url, dest_dir / "ml-1m.zip", match="HTML", fmt="zip")


def test_html_page_with_html_content_type_and_no_checks(server, dest_dir):
    """Even with no md5, size or format to check, an HTML page is refused."""
    url = server.serve("/data.bin", b"<p>moved</p>", content_type="text/html")
    expect_failure(url, dest_dir / "data.bin", match="HTML")


@pytest.mark.parametrize("fmt", ["zip", "gzip", "parquet", None])
def test_html_page_served_as_octet_stream(server, dest_dir, fmt):
    url = server.serve("/reviews_Beauty_5.json.gz", HTML_PAGE, content_type="application/octet-stream")
    expect_failure(url, dest_dir / "reviews_Beauty_5.json.gz", match="HTML", fmt=fmt)


def test_html_page_with_leading_whitespace_and_lower_case(server, dest_dir):
    body = b"\n\n   <!doctype html><html><body>Error 403</body></html>"
    url = server.serve("/likes.parquet", body, content_type="application/octet-stream")
    expect_failure(url, dest_dir / "likes.parquet", match="HTML", fmt="parquet")


def test_html_page_via_file_url(src, dest_dir):
    f = src / "ml-1m.zip"
    f.write_bytes(HTML_PAGE)
    expect_failure(f.as_uri(), dest_dir / "ml-1m.zip", match="HTML", fmt="zip")


def test_http_404(server, dest_dir):
    url = server.base + "/missing/ml-1m.zip"
    expect_failure(url, dest_dir / "ml-1m.zip", match="404", fmt="zip")


def test_missing_file_url(src, dest_dir):
    url = (src / "nope.zip").as_uri()
    expect_failure(url, dest_dir / "nope.zip", fmt="zip")


def test_unreachable_host(dest_dir, server):
    """Nothing listens on the port once the server is gone: a clear error, not a hang."""
    gone = LoopbackServer().start()
    url = gone.serve("/gone.zip", b"x")
    gone.stop()
    expect_failure(url, dest_dir / "gone.zip", timeout=5, fmt="zip")


def test_empty_file(server, dest_dir):
    url = server.serve("/empty.parquet", b"")
    expect_failure(url, dest_dir / "empty.parquet", match="empty")


@pytest.mark.parametrize("via", ["http", "file"])
def test_truncated_parquet(server, src, dest_dir, via):
    good = write_yambda(src / "good.parquet")
    f = truncated_copy(good, src / "likes.parquet", keep=0.8)
    url = server.serve("/likes.parquet", f) if via == "http" else f.as_uri()
    expect_failure(url, dest_dir / "likes.parquet", match="parquet", fmt="parquet")


def test_garbage_parquet(server, dest_dir):
    body = b"PAR1" + bytes(range(256)) * 4 + b"PAR1"
    url = server.serve("/likes.parquet", body)
    expect_failure(url, dest_dir / "likes.parquet", match="parquet", fmt="parquet")


def test_parquet_with_corrupt_data_pages(server, src, dest_dir):
    """Footer intact, first data page overwritten: the footer alone would pass, the data does not."""
    good = write_yambda(src / "good.parquet")
    data = bytearray(good.read_bytes())
    data[4:44] = b"\xff" * 40  # the first column chunk starts right after the 'PAR1' magic
    url = server.serve("/likes.parquet", bytes(data))
    expect_failure(url, dest_dir / "likes.parquet", match="parquet", fmt="parquet")


def test_failure_keeps_an_existing_good_file(server, src, dest_dir):
    """A failed download never replaces what is already at the destination."""
    good = write_ml1m_zip(src / "ml-1m.zip")
    dest = download(good.as_uri(), dest_dir / "ml-1m.zip", fmt="zip", progress=False)
    url = server.serve("/ml-1m.zip", HTML_PAGE, content_type="text/html")
    with pytest.raises(DownloadError, match="HTML"):
        download(url, dest, fmt="zip", progress=False)
    assert dest.read_bytes() == good.read_bytes()
    assert sorted(p.name for p in dest_dir.iterdir()) == ["ml-1m.zip"]


def test_unknown_format_is_refused(dest_dir):
    with pytest.raises(ValueError, match="fmt"):
        download("file:///dev/null", dest_dir / "x", fmt="tar")
    assert_nothing_left(dest_dir)
