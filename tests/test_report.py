"""`l2emg report`: one self-contained HTML page from run folders, checked as text (no network
reference, every image an inline data URI that decodes) and in a real headless browser
(Debian's Chromium: no console error or uncaught exception, the leaderboard in the DOM, a
screenshot that is not blank)."""
from __future__ import annotations

import base64
import html
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from leaderboard_fakes import ORDERS, make_fake_run, make_sweep

METHODS = {"mtl": 0.5, "seq_lora": 0.25, "es_moe": 0.4}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CONSOLE_LINE = re.compile(r":CONSOLE[:(]|Uncaught", re.I)   # how Chromium logs console messages


class _Refs(HTMLParser):
    """Tags and every src / href of a page, and the text of its table cells."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [(tag, k, v or "") for k, v in attrs if k in ("src", "href")]


def _parse(text: str) -> _Refs:
    p = _Refs()
    p.feed(text)
    return p


def _add_routing(run: Path) -> None:
    names = ORDERS[1]
    own = np.tril(np.full((len(names), len(names)), 0.8))
    pd.DataFrame(own, index=[f"after_{i + 1}" for i in range(len(names))], columns=names) \
        .to_csv(run / "matrices" / "route_own.csv")
    conf = np.eye(len(names)) * 0.9 + 0.1 / len(names)
    pd.DataFrame(conf, index=pd.Index(names, name="subset"),
                 columns=[f"expert{k + 1}" for k in range(len(names))]).to_csv(run / "routing.csv")


@pytest.fixture(scope="module")
def full_report(tmp_path_factory, humanml3d_sample) -> Path:
    """Three systems x three orders (a CD diagram), samples, one routed run."""
    from leaderboard.report import build_report

    root = tmp_path_factory.mktemp("report")
    feats = humanml3d_sample / "new_joint_vecs" / "012314.npy"
    make_sweep(root / "runs", METHODS, orders=(1, 2, 3), seeds=(0,), noise=0.01, samples=feats,
               n_frames=10)
    _add_routing(root / "runs" / "es_moe" / "unseen" / "order1" / "seed0")
    return build_report([root / "runs"], root / "out", max_samples=1)


def test_report_is_self_contained(full_report):
    text = full_report.read_text()
    page = _parse(text)
    assert "script" not in page.tags and "link" not in page.tags      # no script, no stylesheet file
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", text, re.I)
    assert "url(" not in text                                          # nothing fetched from CSS
    for tag, attr, value in page.refs:
        if attr == "href":
            assert value.startswith("#"), (tag, value)                # in-page links only
        else:
            assert value.startswith("data:image/"), (tag, value[:40])
    images = {}
    for mime, payload in re.findall(r'src="data:image/(png|gif);base64,([A-Za-z0-9+/=]+)"', text):
        im = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
        images.setdefault(mime, []).append(im)
        assert im.size[0] > 50 and im.size[1] > 50
    # heat maps (2 metrics) + CD diagram + routing are PNG; the motion clip is an animated GIF
    assert len(images.get("png", [])) == 4
    assert len(images["gif"]) == 1 and images["gif"][0].n_frames == 10
    assert sum(attr == "src" for _, attr, _ in page.refs) == 5
    for heading in ("Leaderboard", "Validity checklist", "Claims", "Critical-difference diagram",
                    "Heat maps", "Routing", "Generated motions"):
        assert f">{heading}" in text
    assert "Everything the runs allow is shown." in text
    assert "panels: real, MTL, SeqLoRA, ES-MoE" in text
    assert "mtl &gt; seq_lora on AR" in text and "holds" in text      # a claim with its p-values
    assert "No routing files (not routed): MTL, SeqLoRA." in text


def _chromium(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("Chromium not installed (apt-get install chromium; .ci/run installs it "
                    "where apt is available): the HTML report is not checked in a browser")
    return subprocess.run([CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox",
                           "--enable-logging=stderr", "--v=0", *args],
                          capture_output=True, text=True, timeout=timeout)


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE_LINE.search(line)]


def test_report_in_headless_chromium(full_report, tmp_path):
    # the log check can fail: a page that logs and throws is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('e');"
                   "throw new Error('kaboom')</script></body></html>")
    caught = _console_errors(_chromium("--dump-dom", bad.as_uri()).stderr)
    assert any("kaboom" in line for line in caught), caught

    dom = _chromium("--dump-dom", full_report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console_errors(dom.stderr) == []
    table = re.search(r'<table class="leaderboard" id="leaderboard-unseen">(.*?)</table>',
                      dom.stdout, re.S)
    assert table is not None
    first_cells = re.findall(r'<tr class="(\w+)"><td class="name">([^<]+)</td>', table.group(1))
    assert first_cells == [("system", "MTL"), ("system", "SeqLoRA"), ("system", "ES-MoE"),
                           ("bound", "Chance"), ("bound", "Ceiling (real vs real)")]
    assert "<strong>" in table.group(1)                 # MTL's AR beats the rest beyond the CIs

    shot = tmp_path / "shot.png"
    res = _chromium(f"--screenshot={shot}", "--window-size=1200,900", full_report.as_uri())
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    assert _console_errors(res.stderr) == []
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (900, 1200)
    non_white = (pixels < 240).any(axis=2).mean()
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert non_white > 0.03 and colours > 50, (non_white, colours)


def test_report_states_what_it_cannot_show(tmp_path, capsys):
    """One order, no samples, no routed run, no chance level in result.json: each missing piece
    is said, with its reason."""
    from harness.cli import main

    for method, quality in list(METHODS.items())[:2]:
        make_fake_run(tmp_path / "runs", method, quality=quality, chance=None)
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    assert "index.html" in capsys.readouterr().out
    text = (tmp_path / "out" / "index.html").read_text()
    section = html.unescape(text.split('id="not-shown"', 1)[1].split("</section>", 1)[0])
    assert "needs >= 2 methods on >= 2 complete blocks" in section      # the CD diagram
    assert "no run has routing.csv or matrices/route_own.csv" in section
    assert "no run saved generated samples" in section
    assert "chance row of the unseen setting: no run's result.json has 'chance'" in section
    assert text.count('class="missing"') == 4                # each also in its own section
    assert '<td class="name">Chance</td>' not in text and '<td class="name">MTL</td>' in text
    assert len(re.findall(r"data:image/png", text)) == 2     # the heat maps
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "o2"), "--no-figures"]) == 0
    assert "data:image" not in (tmp_path / "o2" / "index.html").read_text()


def test_bench_writes_the_report_into_its_folder(tmp_path):
    """`l2emg bench` ends with OUT/report/index.html (harness.pipeline._report)."""
    import argparse

    from harness.pipeline import _report

    make_fake_run(tmp_path / "runs", "seq_lora", quality=0.25)
    page = _report(tmp_path, argparse.Namespace(claims=None, no_figures=True))
    assert page == tmp_path / "report" / "index.html"
    assert '<td class="name">SeqLoRA</td>' in page.read_text()
