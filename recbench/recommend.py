"""Recommendations from a saved model, for a person at a terminal.

    python -m recbench.recommend results/synthetic/SASRec/seed0 --user 17 --k 10
    python -m recbench.recommend results/synthetic/SASRec/seed0 --test-users --out recs.csv

Prints (or writes as CSV) user, item, rank, score in the dataset's own ids. A user's history is
what the model saw of them (``recbench.artefacts.Ids``); ``--keep-seen`` ranks the history's
items too. Many users are scored in batches, with a progress bar.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tabulate import tabulate

from recbench.errors import BenchError
from recbench.io import write_csv
from recbench.artefacts import load


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recbench.recommend", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path,
                    help="a saved model: results/<dataset>/<model>/seed<seed>[/model]")
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", action="append", help="an external user id (repeatable)")
    who.add_argument("--users-file", type=Path, help="a file of user ids, one per line")
    who.add_argument("--test-users", action="store_true", help="every test user of the split")
    ap.add_argument("--k", type=int, default=10, help="list length (default 10)")
    ap.add_argument("--keep-seen", action="store_true",
                    help="rank the user's own history items too (default: filtered out)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--out", type=Path, help="write a CSV here instead of printing a table")
    args = ap.parse_args(argv)
    try:
        model = load(args.model, device=args.device)
        if args.test_users:
            users = list(model.ids.users[model.ids.test.users])
        elif args.users_file:
            users = [u.strip() for u in args.users_file.read_text().splitlines() if u.strip()]
        else:
            users = args.user
        recs = model.recommend(users, k=args.k, filter_seen=not args.keep_seen,
                               batch_size=args.batch_size, progress=len(users) > args.batch_size)
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.out:
        write_csv(recs, args.out)
        print(f"{len(recs):,} recommendations for {len(users):,} users written to {args.out}")
    else:
        shown = recs.assign(score=recs["score"].map("{:.4f}".format))  # ids exactly as they are
        print(tabulate(shown.astype(str), headers="keys", tablefmt="github", showindex=False,
                       disable_numparse=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
