"""Builders of tiny raw files in each source's exact format, written at test time.

Nothing here is real data: every file is generated into a temporary folder by the test that
needs it. Each builder returns the path it wrote, and each default row list comes with the
canonical (user, item, timestamp) rows its parser must return. ``LoopbackServer`` serves bytes
over HTTP on 127.0.0.1 (an ephemeral port), for the download tests.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import json
import os
import threading
import time
import zipfile
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

# ----------------------------------------------------------------------------- MovieLens 1M

# (UserID, MovieID, Rating, Timestamp), as in ml-1m/ratings.dat
ML1M_RATINGS = [
    (1, 1193, 5, 978300760),
    (1, 661, 3, 978302109),
    (1, 914, 3, 978301968),
    (2, 1357, 5, 978298709),
    (2, 3068, 4, 978299000),
    (3, 1193, 4, 978297867),
    (3, 2355, 5, 978298430),
]
ML1M_EXPECTED = [(u, i, t) for u, i, _, t in ML1M_RATINGS]

_ML1M_MOVIES = (
    "1::Toy Story (1995)::Animation|Children's|Comedy\n"
    "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
    "914::My Fair Lady (1964)::Musical|Romance\n"
    "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
    "1357::Shine (1996)::Drama|Romance\n"
    "2355::Bug's Life, A (1998)::Animation|Children's|Comedy\n"
    "3068::Verdict, The (1982)::Drama\n"
)
_ML1M_USERS = "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n"
_ML1M_README = "SUMMARY\n================================================================================\n"


def write_ml1m_zip(path: Path, ratings=ML1M_RATINGS, *, ratings_member: str = "ml-1m/ratings.dat") -> Path:
    """An ml-1m.zip lookalike: ml-1m/{movies,ratings,users}.dat and README, deflated."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{u}::{m}::{r}::{t}\n" for u, m, r, t in ratings)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-1m/", "")
        zf.writestr("ml-1m/movies.dat", _ML1M_MOVIES.encode("latin-1"))
        zf.writestr(ratings_member, body.encode("ascii"))
        zf.writestr("ml-1m/README", _ML1M_README)
        zf.writestr("ml-1m/users.dat", _ML1M_USERS)
    return path


# ----------------------------------------------------------------------------- Amazon 2014

# (reviewerID, asin, overall, unixReviewTime), as in reviews_<Category>_5.json.gz
AMAZON_REVIEWS = [
    ("A1YJEY40YUW4SE", "7806397051", 1.0, 1391040000),
    ("A60XNB876KYML", "7806397051", 3.0, 1397779200),
    ("A3G6XNM240RMWA", "7806397051", 4.0, 1378425600),
    ("A1YJEY40YUW4SE", "9759091062", 5.0, 1380153600),
    ("A60XNB876KYML", "9788072216", 2.0, 1400025600),
]
AMAZON_EXPECTED = [(u, i, t) for u, i, _, t in AMAZON_REVIEWS]


def amazon_record(reviewer: str, asin: str, overall: float, ts: int) -> dict:
    """One review with every key of the 2014 5-core dumps, in their order."""
    return {
        "reviewerID": reviewer,
        "asin": asin,
        "reviewerName": f"Reviewer {reviewer[:4]}",
        "helpful": [0, 0],
        "reviewText": "Works as described, would buy again.",
        "overall": float(overall),
        "summary": "Fine",
        "unixReviewTime": int(ts),
        "reviewTime": time.strftime("%m %d, %Y", time.gmtime(ts)),
    }


def write_amazon_2014(path: Path, reviews=AMAZON_REVIEWS, *, drop_key: str | None = None) -> Path:
    """A reviews_<Category>_5.json.gz lookalike: gzip of one JSON object per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for rec in (amazon_record(*r) for r in reviews):
        if drop_key is not None:
            rec.pop(drop_key)
        lines.append(json.dumps(rec) + "\n")
    with gzip.open(path, "wt", encoding="utf8") as f:
        f.writelines(lines)
    return path


def amazon_filename(category: str) -> str:
    return f"reviews_{category}_5.json.gz"


# ----------------------------------------------------------------------------- Yambda

# (uid, item_id, timestamp, is_organic), as in flat/<size>/<event>.parquet
YAMBDA_ROWS = [
    (100, 7001, 3_600, 1),
    (100, 7002, 3_605, 0),
    (200, 7001, 3_610, 1),
    (200, 7003, 3_700, 1),
    (300, 7004, 4_000, 0),
]
YAMBDA_EXPECTED = [(u, i, t) for u, i, t, _ in YAMBDA_ROWS]

YAMBDA_SCHEMA = pa.schema(
    [("uid", pa.uint32()), ("timestamp", pa.uint32()), ("item_id", pa.uint32()), ("is_organic", pa.uint8())]
)


def write_yambda(path: Path, rows=YAMBDA_ROWS, *, drop_column: str | None = None) -> Path:
    """A Yambda flat parquet lookalike: uid, timestamp, item_id (uint32), is_organic (uint8)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = {
        "uid": [r[0] for r in rows],
        "timestamp": [r[2] for r in rows],
        "item_id": [r[1] for r in rows],
        "is_organic": [r[3] for r in rows],
    }
    table = pa.table(cols, schema=YAMBDA_SCHEMA)
    if drop_column is not None:
        table = table.drop_columns([drop_column])
    pq.write_table(table, path)
    return path


# ----------------------------------------------------------------------------- custom files


def write_delimited(path: Path, header: list[str], rows: list[tuple], sep: str) -> Path:
    """A csv (sep=',') or tsv (sep='\\t') with a header line; None is written as an empty field."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = sep.join(header) + "\n"
    text += "".join(sep.join("" if v is None else str(v) for v in row) + "\n" for row in rows)
    path.write_text(text)
    return path


def write_parquet_table(path: Path, columns: dict[str, list], types: dict[str, pa.DataType] | None = None) -> Path:
    """A parquet file with arbitrary column names (and optional explicit arrow types)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    types = types or {}
    arrays = {k: pa.array(v, type=types.get(k)) for k, v in columns.items()}
    pq.write_table(pa.table(arrays), path)
    return path


# ----------------------------------------------------------------------------- byte helpers


def md5_of(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def truncated_copy(src: Path, dest: Path, keep: float = 0.5) -> Path:
    """The first ``keep`` fraction of ``src``'s bytes, as if a transfer was cut off."""
    data = Path(src).read_bytes()
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    Path(dest).write_bytes(data[: int(len(data) * keep)])
    return Path(dest)


HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n"
    b"<body><p>Please sign in to download this file.</p></body></html>\n"
)


# ----------------------------------------------------------------------------- loopback HTTP server


class LoopbackServer:
    """Routes path -> (status, content type, body, announced length) on a ThreadingHTTPServer."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, str, bytes, int | None]] = {}
        routes = self.routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                route = routes.get(self.path)
                if route is None:
                    self.send_error(404, "File not found")
                    return
                status, ctype, body, length = route
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def serve(
        self,
        path: str,
        body: bytes | Path,
        *,
        content_type: str = "application/octet-stream",
        status: int = 200,
        announce: int | None = None,
    ) -> str:
        """Serve ``body`` (bytes or a file's bytes) at ``path``; return its URL."""
        if isinstance(body, Path):
            body = body.read_bytes()
        self.routes[path] = (status, content_type, body, announce)
        return self.base + path

    def start(self) -> "LoopbackServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@contextlib.contextmanager
def loopback_server() -> Iterator[LoopbackServer]:
    """A started LoopbackServer, with proxies bypassed for 127.0.0.1; stopped on exit."""
    saved = {k: os.environ.get(k) for k in ("no_proxy", "NO_PROXY")}
    for k in saved:  # a proxy from the environment must not see loopback requests
        os.environ[k] = "127.0.0.1,localhost"
    srv = LoopbackServer().start()
    try:
        yield srv
    finally:
        srv.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
