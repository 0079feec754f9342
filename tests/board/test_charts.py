"""Kaplan–Meier against a textbook example, and SVG charts that are valid, safe and drawn."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from board.charts import Series, bar_chart, km_series, nice_ticks, step_chart
from board.survival import kaplan_meier, median_time, survival_at

SVG = "{http://www.w3.org/2000/svg}"
# Freireich et al. (1963), the 6-MP arm: weeks in remission, + = censored.
EVENTS = [6, 6, 6, 7, 10, 13, 16, 22, 23]
CENSORED = [6, 9, 10, 11, 17, 19, 20, 25, 32, 32, 34, 35]
HOSTILE = '</title><script>alert(1)</script>"><img src=x onerror=alert(1)>'


def freireich():
    return kaplan_meier([(t, True) for t in EVENTS] + [(t, False) for t in CENSORED])


def test_kaplan_meier_matches_the_textbook() -> None:
    steps = freireich()
    expected = {6: 0.857, 7: 0.807, 10: 0.753, 13: 0.690, 16: 0.627, 22: 0.538, 23: 0.448}
    for t, value in expected.items():
        assert survival_at(steps, t) == pytest.approx(value, abs=0.001)
    assert steps[0].t == 0 and steps[0].survival == 1.0 and steps[0].at_risk == 21
    at6 = next(s for s in steps if s.t == 6)
    assert (at6.at_risk, at6.events, at6.censored) == (21, 3, 1)
    assert median_time(steps) == 23
    assert survival_at(steps, 5.9) == 1.0 and survival_at(steps, 100) == pytest.approx(
        0.448, abs=0.001
    )


def test_edge_cases() -> None:
    assert kaplan_meier([]) == []
    flat = kaplan_meier([(3, False), (5, False)])
    assert {s.survival for s in flat} == {1.0} and median_time(flat) is None
    all_at_once = kaplan_meier([(2, True)] * 4)
    assert all_at_once[-1].survival == 0 and median_time(all_at_once) == 2
    at_zero = kaplan_meier([(0, True), (-1, True), (4, False), (4, True)])
    assert at_zero[1].t == 0 and at_zero[1].survival == 0.5  # negative days count as 0


def test_nice_ticks() -> None:
    assert nice_ticks(0, 37) == [0, 10, 20, 30, 40]
    assert nice_ticks(0, 1, 4) == [0, 0.5, 1.0]
    assert nice_ticks(0, 0) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


def parsed(svg) -> ET.Element:
    root = ET.fromstring(str(svg))
    for element in root.iter():
        assert element.tag not in (
            f"{SVG}script",
            f"{SVG}style",
            f"{SVG}img",
            f"{SVG}foreignObject",
        )
        assert "style" not in element.attrib
        assert not any(name.startswith("on") for name in element.attrib)
        assert not any("href" in name for name in element.attrib)
    return root


def test_a_km_step_chart_is_drawn_and_safe() -> None:
    steps = freireich()
    svg = step_chart(
        [km_series(HOSTILE, steps), km_series("level 2", kaplan_meier([(1, True), (3, False)]))],
        title=HOSTILE,
        x_label="days",
        y_label="share",
        chart_id="km",
    )
    root = parsed(svg)
    assert root.attrib["width"] == "640" and root.attrib["viewBox"] == "0 0 640 320"
    assert root.attrib["aria-labelledby"] == "km-title"
    paths = root.findall(f".//{SVG}path[@data-points]")
    assert [int(p.attrib["data-points"]) for p in paths] == [len(steps), 3]
    d = paths[0].attrib["d"]
    ys = [float(part) for part in d.split("V")[1:] for part in [part.split("H")[0]]]
    assert ys == sorted(ys) and len(ys) == 7  # seven drops, each lower on the page
    censor_marks = root.findall(f".//{SVG}g[@class='censor']/{SVG}line")
    assert len(censor_marks) == len(set(CENSORED)) + 1  # one per censoring time, both series
    texts = "".join(root.itertext())
    assert HOSTILE in texts  # the name came through as text, escaped in the markup
    assert "<script>" not in str(svg)


def test_empty_charts_say_so() -> None:
    for svg in (
        step_chart([Series("none", [])], title="t", x_label="x", y_label="y"),
        bar_chart([], [], title="t", x_label="x", y_label="y"),
    ):
        root = parsed(svg)
        assert "no data yet" in "".join(root.itertext())


def test_bar_chart_stacks_with_tooltips() -> None:
    days = [f"2026-12-{d:02d}" for d in range(1, 21)]
    svg = bar_chart(
        days,
        [("opened", [1] * 20), ("resolved", [0] * 19 + [3])],
        title="Timeline",
        x_label="day",
        y_label="incidents",
        height=240,
    )
    root = parsed(svg)
    bars = root.findall(f".//{SVG}rect[@data-value]")
    assert len(bars) == 21
    last = [b for b in bars if "2026-12-20" in b.find(f"{SVG}title").text]
    assert sorted(b.attrib["data-value"] for b in last) == ["1", "3"]
    labels = [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.startswith("2026")]
    assert 2 <= len(labels) <= 8
