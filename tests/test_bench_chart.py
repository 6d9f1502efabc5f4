"""bench/chart.py draws bench/micro.py and bench/net.py JSON as a PNG.
Tooling, not loop behaviour, so there is no asyncio twin; skipped where
matplotlib is missing (test.sh installs it)."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _loops(e, a, u):
    return {name: {"rounds": [v], "best": v, "median": v, "worst": v}
            for name, v in (("eloop", e), ("asyncio", a), ("uvloop", u))}


def test_chart_from_micro_and_net_json(tmp_path):
    pytest.importorskip("matplotlib")
    meta = {"time": "2026-12-03T08:00:00+0000", "python": "3.11.7 (main)",
            "rounds": 3, "repeat": 1}
    micro = {"meta": meta, "results": {
        "call_soon": {"loops": _loops(6e6, 1.5e6, 3.8e6)},
        "sleep0": {"loops": _loops(1.8e6, 5e5, 1.2e6)}}}
    net = {"meta": meta, "results": {
        "echo_1k_protocol": {"group": "echo", "metrics": {"rt_per_sec": {
            "higher_is_better": True, "summary": _loops(240e3, 190e3, 230e3)}}},
        "bulk_up_sock": {"group": "bulk", "metrics": {
            "gib_per_sec": {"higher_is_better": True,
                            "summary": _loops(2.9, 3.2, 3.0)},
            "cpu_per_gib": {"higher_is_better": False,
                            "summary": _loops(0.14, 0.2, 0.18)}}}}}
    paths = []
    for name, doc in (("micro", micro), ("net", net)):
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(doc))
        paths.append(str(p))
    out = tmp_path / "chart.png"
    r = subprocess.run([sys.executable, os.path.join(REPO, "bench", "chart.py"),
                        *paths, "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    sys.path.insert(0, os.path.join(REPO, "bench"))
    try:
        import chart
    finally:
        sys.path.pop(0)
    rows = dict(chart._series(net, "best"))
    # Higher is better: loop / asyncio; lower is better: asyncio / loop.
    assert rows["bulk_up_sock (GiB/s)"]["eloop"] == pytest.approx(2.9 / 3.2)
    assert rows["bulk_up_sock (CPU s/GiB) [inverted]"]["eloop"] == \
        pytest.approx(0.2 / 0.14)
    assert dict(chart._series(micro, "best"))["call_soon"]["uvloop"] == \
        pytest.approx(3.8 / 1.5)
