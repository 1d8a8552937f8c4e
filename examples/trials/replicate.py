"""Run the replication specs and write the model-vs-published table into docs/trials.md.

    python examples/trials/replicate.py --workers 2                 # full size (minutes), updates docs/trials.md
    python examples/trials/replicate.py --patients-per-arm 200 --no-docs   # a quick look, printed only

Each spec (``examples/trials/replicate_*.toml``) carries the published results of a real trial as
``[[published]]`` tables; every run is resumed from ``--out`` if it is already there. The table replaces the
lines between the two ``replication-table`` markers of docs/trials.md.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from chemomet.trial.replication import markdown_table
from chemomet.trial.runner import run_replications

HERE = Path(__file__).resolve().parent
SPECS = [
    HERE / "replicate_nsabp_b18.toml",
    HERE / "replicate_ebctcg_2018.toml",
    HERE / "replicate_ebctcg_2012_chemotherapy.toml",
    HERE / "replicate_ebctcg_2011_tamoxifen.toml",
    HERE / "replicate_ebctcg_2021_trastuzumab.toml",
    HERE / "replicate_ebctcg_2015_aromatase.toml",
]
DOCS = HERE.parents[1] / "docs" / "trials.md"
START, END = "<!-- replication-table:start -->", "<!-- replication-table:end -->"


def write_docs(table: str, docs: Path = DOCS) -> None:
    """Replace the text between the markers of ``docs`` with ``table``."""
    text = docs.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{docs}: the markers {START} ... {END} are missing")
    docs.write_text(pattern.sub(lambda _: f"{START}\n{table}\n{END}", text), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="trial-replications", help="run folder (one subfolder per trial)")
    parser.add_argument("--workers", type=int, default=None, help="Dask workers (default: this process)")
    parser.add_argument("--patients-per-arm", type=int, default=None, help="shrink every trial (patients per arm)")
    parser.add_argument("--no-docs", action="store_true", help="print the table, leave docs/trials.md alone")
    args = parser.parse_args()
    results = run_replications(SPECS, args.out, patients_per_arm=args.patients_per_arm, workers=args.workers)
    table = markdown_table(results)
    print(table)
    if not args.no_docs:
        write_docs(table)
        print(f"written to {DOCS}")


if __name__ == "__main__":
    main()
