"""Kaplan–Meier against a textbook example, and SVG charts that are valid, safe and drawn."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET

import pytest

from board.charts import Series, bar_chart, km_series, nice_ticks, step_chart
from board.survival import Step, kaplan_meier, median_time, survival_at

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
    assert at_zero[0] == Step(0.0, 1.0, 4, 0, 0)  # always starts at 1.0 ...
    assert at_zero[1] == Step(0.0, 0.5, 4, 2, 0)  # ... then the day-0 drop (-1 counts as 0)
    assert survival_at(at_zero, 0) == 0.5 and survival_at(at_zero, -1) == 1.0
    # The tie at 4: the event sees both sites at risk, the censoring leaves after it.
    assert at_zero[2] == Step(4.0, 0.25, 2, 1, 1)


def test_nice_ticks() -> None:
    assert nice_ticks(0, 37) == [0, 10, 20, 30, 40]
    assert nice_ticks(0, 1, 4) == [0, 0.5, 1.0]
    assert nice_ticks(0, 0) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 1234) == [0, 500, 1000, 1500]
    assert nice_ticks(3, 17) == [0, 5, 10, 15, 20]
    with pytest.raises(ValueError, match="finite"):
        nice_ticks(0, math.inf)


def vertices(d: str) -> list[tuple[float, float]]:
    """The corners of an M/H/V path, in pixels."""
    corners: list[tuple[float, float]] = []
    for command, args in re.findall(r"([MHV])([-\d.,]+)", d):
        if command == "M":
            x, y = map(float, args.split(","))
        elif command == "H":
            x, y = float(args), corners[-1][1]
        else:
            x, y = corners[-1][0], float(args)
        corners.append((x, y))
    return corners


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
    corners = vertices(paths[0].attrib["d"])
    assert corners == sorted(corners)  # rightwards and down the page only: never up
    drops = [b for a, b in itertools.pairwise(corners) if b[1] != a[1]]
    assert len(drops) == 7  # one per event time
    censor_marks = root.findall(f".//{SVG}g[@class='censor']/{SVG}line")
    assert len(censor_marks) == len(set(CENSORED)) + 1  # one per censoring time, both series
    texts = "".join(root.itertext())
    assert HOSTILE in texts  # the name came through as text, escaped in the markup
    assert "<script>" not in str(svg)


def test_a_drop_on_day_zero_is_drawn_at_zero() -> None:
    svg = step_chart(
        [km_series("fast", kaplan_meier([(0, True), (4, True), (6, False)]))],
        title="t",
        x_label="days",
        y_label="share",
    )
    root = parsed(svg)
    assert root.find(f".//{SVG}g[@class='legend']") is None  # one series: no legend
    corners = vertices(root.find(f".//{SVG}path[@data-points]").attrib["d"])
    (x0, top), (x1, after) = corners[0], next(c for c in corners if c[1] != corners[0][1])
    assert x0 == x1 and after > top  # starts at 100% and falls at once, at x=0
    assert corners == sorted(corners)
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.endswith("%")]
    assert ticks[0] == "0%" and ticks[-1] == "100%"


def test_counts_are_not_percentages() -> None:
    svg = step_chart(
        [Series("open", [(0, 3), (2, 7)]), Series("closed", [(1, 1)])],
        title="t",
        x_label="days",
        y_label="sites",
        y_max=8,
    )
    root = parsed(svg)
    labels = {t.text for t in root.iter(f"{SVG}text")}
    assert {"0", "2", "4", "6", "8"} <= labels and not any("%" in (t or "") for t in labels)
    legend = root.find(f".//{SVG}g[@class='legend']")
    assert [t.text for t in legend.iter(f"{SVG}text")] == ["open", "closed"]
    colours = [p.attrib["stroke"] for p in root.iter(f"{SVG}path")]
    assert len(set(colours)) == 2


def test_empty_charts_say_so() -> None:
    for svg in (
        step_chart([Series("none", [])], title="t", x_label="x", y_label="y"),
        bar_chart([], [], title="t", x_label="x", y_label="y"),
    ):
        root = parsed(svg)
        assert root.attrib["width"] == "640"
        empty = root.find(f".//{SVG}text[@class='empty']")
        assert empty is not None and empty.text == "no data yet"
        assert root.find(f".//{SVG}g[@class='axis']") is not None
        assert (
            root.find(f".//{SVG}path") is None and root.find(f".//{SVG}rect[@data-value]") is None
        )


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


def test_bar_chart_escapes_and_checks_lengths() -> None:
    svg = bar_chart(
        [HOSTILE],
        [(HOSTILE, [2]), ("resolved", [1])],
        title=HOSTILE,
        x_label="day",
        y_label="incidents",
        chart_id="tl",
    )
    root = parsed(svg)
    assert root.attrib["aria-labelledby"] == "tl-title"
    assert root.find(f"{SVG}title").attrib["id"] == "tl-title"
    tips = [b.find(f"{SVG}title").text for b in root.iter(f"{SVG}rect") if "data-value" in b.attrib]
    assert tips == [f"{HOSTILE} · {HOSTILE}: 2", f"{HOSTILE} · resolved: 1"]
    with pytest.raises(ValueError, match="2 values for 1 categories"):
        bar_chart(["d"], [("x", [1, 2])], title="t", x_label="x", y_label="y")
