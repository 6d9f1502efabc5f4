#!/usr/bin/env python3
"""Draw benchmark results as a PNG: each loop's speed relative to stock
asyncio, one bar per loop and benchmark.

    python bench/micro.py --json micro.json
    python bench/net.py --json net.json
    python bench/chart.py micro.json [net.json] -o docs/img/bench.png

Each JSON file becomes one panel.  A bar is loop / asyncio for a benchmark
where higher is better (ops/s, GiB/s) and asyncio / loop where lower is
better (CPU-seconds per GiB, KiB per connection), so on every panel a bar
above 1 means faster (or leaner) than asyncio; the labels of the inverted
ones say so.  Best-of-rounds values by
default, --median for the medians.  The run's date, Python and round count
go into each panel's title, so a chart always says where it came from.
"""
import argparse
import json
import sys

LOOP_COLORS = {"eloop": "#2b6cb0", "uvloop": "#dd8a2e", "asyncio": "#888888"}
METRIC_NAMES = {"gib_per_sec": "GiB/s", "cpu_per_gib": "CPU s/GiB"}


def _series(doc, stat):
    """[(label, {loop: value relative to asyncio})] in the file's order."""
    rows = []
    for bench, res in doc["results"].items():
        if "metrics" in res:            # bench/net.py: one or more metrics
            metrics = res["metrics"].items()
        else:                           # bench/micro.py: ops/s
            metrics = [("ops/s", {"higher_is_better": True,
                                  "summary": res.get("loops", {})})]
        for metric, m in metrics:
            summ = m["summary"]
            base = summ.get("asyncio", {}).get(stat)
            if not base:
                continue
            rel = {}
            for ln, s in summ.items():
                v = s.get(stat)
                if ln == "asyncio" or ln not in LOOP_COLORS or not v:
                    continue
                rel[ln] = v / base if m["higher_is_better"] else base / v
            if rel:
                label = bench
                if len(res.get("metrics", {})) > 1:
                    label += f" ({METRIC_NAMES.get(metric, metric)})"
                if not m["higher_is_better"]:
                    label += " [inverted]"
                rows.append((label, rel))
    return rows


def _title(doc, path):
    meta = doc.get("meta", {})
    kind = "networking (bench/net.py)" if any(
        "metrics" in r for r in doc["results"].values()) else "micro (bench/micro.py)"
    py = meta.get("python", "").split()[0]
    return (f"{kind}: {meta.get('time', '?')[:10]}, Python {py}, "
            f"{meta.get('rounds', '?')} round(s) x {meta.get('repeat', 1)}")


def draw(paths, out, stat):
    import matplotlib
    matplotlib.use("Agg")               # files only, no display needed
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    docs = []
    for p in paths:
        with open(p) as f:
            docs.append((p, json.load(f)))
    panels = [(p, d, _series(d, stat)) for p, d in docs]
    panels = [x for x in panels if x[2]]
    if not panels:
        sys.exit("no benchmark with an asyncio baseline in " + ", ".join(paths))
    heights = [max(2.0, 0.42 * len(rows) + 1.0) for _, _, rows in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, sum(heights)),
                             gridspec_kw={"height_ratios": heights},
                             squeeze=False)
    for ax, (path, doc, rows) in zip(axes[:, 0], panels):
        loops = [ln for ln in LOOP_COLORS if any(ln in r for _, r in rows)]
        width = 0.8 / len(loops)
        for k, ln in enumerate(loops):
            ys = [i + (k - (len(loops) - 1) / 2) * width for i in range(len(rows))]
            vals = [r.get(ln, 0) for _, r in rows]
            # Bars grow from asyncio's 1.0, right when faster, left when
            # slower; the scale is logarithmic so 2x and 0.5x look alike.
            bars = ax.barh(ys, [v - 1 if v else 0 for v in vals], left=1,
                           height=width, color=LOOP_COLORS[ln], label=ln)
            for b, v in zip(bars, vals):
                if v:
                    ax.text(v, b.get_y() + b.get_height() / 2,
                            f" {v:.2f}x ",
                            va="center", ha="left" if v >= 1 else "right",
                            fontsize=7)
        ax.axvline(1.0, color=LOOP_COLORS["asyncio"], linestyle="--", linewidth=1)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([label for label, _ in rows], fontsize=8)
        ax.invert_yaxis()
        vals = [v for _, r in rows for v in r.values()]
        ax.set_xscale("log")
        ax.set_xlim(min(0.5, min(vals) / 1.6), max(2.0, max(vals) * 3))
        ax.xaxis.set_major_formatter(
            matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}x"))
        ax.set_xlabel(f"relative to stock asyncio ({stat} of rounds; log scale; "
                      "dashed line = asyncio; right is better)", fontsize=8)
        ax.set_title(_title(doc, path), fontsize=9)
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("json", nargs="+", help="results of bench/micro.py or bench/net.py --json")
    p.add_argument("-o", "--output", default="bench.png", help="PNG to write (default bench.png)")
    p.add_argument("--median", action="store_true", help="medians instead of best-of-rounds")
    args = p.parse_args(argv)
    draw(args.json, args.output, "median" if args.median else "best")
    return 0


if __name__ == "__main__":
    sys.exit(main())
