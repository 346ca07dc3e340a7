"""Column charts for the admin reports, drawn as inline SVG: no JavaScript, no CDN.

`columns` lays the chart out here and templates/admin/newsletter/reports/chart.svg.html
draws it, so every label goes through the template's escaping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Series:
    name: str
    css: str  # a class in the report's stylesheet: its colour
    values: Sequence[float]


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Rule:
    y: float
    css: str
    text: str


@dataclass
class Chart:
    title: str
    width: int
    height: int
    rects: list[Rect] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    legend: list[Series] = field(default_factory=list)
    zero: float = 0.0
    left: float = 0.0
    right: float = 0.0


def columns(
    title: str,
    categories: Sequence[str],
    up: Sequence[Series],
    down: Sequence[Series] = (),
    *,
    rules: Sequence[tuple[float, str, str]] = (),
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    width: int = 720,
    height: int = 220,
) -> Chart:
    """Lay out columns per category: `up` side by side above the axis, `down` stacked below.

    `rules` are horizontal lines (value, css, text), e.g. a threshold to stay under.
    """
    left, right, top, bottom = 44.0, 8.0, 16.0, 22.0
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(categories), 1)
    highest = max([v for s in up for v in s.values] + [value for value, _, _ in rules] + [0.0])
    deepest = max([sum(vals) for vals in zip(*(s.values for s in down), strict=True)] + [0.0])
    span = (highest + deepest) or 1.0
    scale = plot_h / span
    zero = top + highest * scale
    chart = Chart(
        title=title,
        width=width,
        height=height,
        legend=[*up, *down],
        zero=zero,
        left=left,
        right=width - right,
    )
    slot = plot_w / n
    bar = slot * 0.8 / max(len(up), 1)
    for i, category in enumerate(categories):
        x0 = left + i * slot + slot * 0.1
        for j, series in enumerate(up):
            value = series.values[i]
            h = value * scale
            chart.rects.append(
                Rect(
                    x0 + j * bar,
                    zero - h,
                    bar,
                    h,
                    series.css,
                    f"{category} · {series.name}: {fmt(value)}",
                )
            )
        depth = zero
        for series in down:
            value = series.values[i]
            h = value * scale
            chart.rects.append(
                Rect(
                    x0,
                    depth,
                    slot * 0.8,
                    h,
                    series.css,
                    f"{category} · {series.name}: {fmt(value)}",
                )
            )
            depth += h
        if n <= 16 or i % 2 == 0:
            chart.labels.append(Label(x0 + slot * 0.4, height - 6, category))
    for value, css, text in rules:
        chart.rules.append(Rule(zero - value * scale, css, text))
    chart.labels.append(Label(left - 4, top + 8, fmt(highest), anchor="end"))
    if deepest:
        chart.labels.append(Label(left - 4, height - bottom, "-" + fmt(deepest), anchor="end"))
    return chart
