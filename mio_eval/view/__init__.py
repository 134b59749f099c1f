"""``mio-eval view RESULTS_ROOT --out DIR``: a static HTML site over every run under a root.

Opens from ``file://`` with no server and no network: an index of runs (sortable), a sample
browser per run (paginated, filters by error / value range / text, best and worst first; audio,
images and video inline, transcripts aligned word by word with their references), a comparison
page per task that two or more models ran, and the plots of :mod:`mio_eval.plots`. Media are linked
relative to the site, or copied into it with ``--copy-media``; no absolute path is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from mio_eval.view.site import build_site

__all__ = ["build_site", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mio-eval view", description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", help="results root (<root>/<model>/<task>/metrics.json)")
    parser.add_argument("--out", required=True, help="directory to write the site into")
    parser.add_argument("--copy-media", action="store_true", help="copy media into the site (movable) instead of linking")
    parser.add_argument("--no-plots", action="store_true", help="skip the matplotlib plots")
    args = parser.parse_args(argv)
    root = Path(args.results_dir)
    if not root.is_dir():
        print(f"mio-eval view: error: no results directory {root}", file=sys.stderr)
        return 2
    from mio_eval.results import find_runs

    runs = find_runs(root)
    if not runs:
        print(f"mio-eval view: error: no runs under {root} (expected <root>/<model>/<task>/metrics.json)",
              file=sys.stderr)
        return 2
    index = build_site(root, args.out, copy_media=args.copy_media, plots=not args.no_plots, runs=runs)
    print(f"wrote {index} (open it in a browser: file://{index.resolve()})")
    return 0
