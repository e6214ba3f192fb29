"""Inline SVG charts and colour scales for the HTML report (no JavaScript, no network).

Every piece of text that goes into the SVG passes through `esc`; the result is wrapped in
`markupsafe.Markup` only here, after escaping, so the report template never needs `|safe`.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from markupsafe import Markup

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
# Diverging red-white-blue (ColorBrewer RdBu, 7 classes): low scores red, high blue.
_RDBU = ("#b2182b", "#ef8a62", "#fddbc7", "#f7f7f7", "#d1e5f0", "#67a9cf", "#2166ac")


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _hex(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _mix(t: float, stops: tuple[str, ...]) -> str:
    t = min(1.0, max(0.0, t)) * (len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    (r1, g1, b1), (r2, g2, b2) = _hex(stops[i]), _hex(stops[i + 1])
    f = t - i
    return f"#{round(r1 + (r2 - r1) * f):02x}{round(g1 + (g2 - g1) * f):02x}{round(b1 + (b2 - b1) * f):02x}"


def _ink(background: str) -> str:
    r, g, b = _hex(background)
    return "#ffffff" if 0.299 * r + 0.587 * g + 0.114 * b < 140 else "#1b1f24"


def score_colors(norm: float | None) -> tuple[str, str]:
    """(background, text) for a 0-1 score; grey when there is no score."""
    if norm is None or (isinstance(norm, float) and math.isnan(norm)):
        return "#e9ecef", "#6c757d"
    bg = _mix(norm, _RDBU)
    return bg, _ink(bg)


def delta_colors(delta: float | None, span: float = 0.5) -> tuple[str, str]:
    """(background, text) for a B - A difference on the 0-1 scale; +-span saturates."""
    if delta is None or (isinstance(delta, float) and math.isnan(delta)):
        return "#e9ecef", "#6c757d"
    return score_colors(0.5 + delta / (2 * span))


@dataclass
class Series:
    name: str
    points: list[tuple[int, float]]
    stops: list[int] = field(default_factory=list)  # x positions where the learner would not continue


@dataclass
class _Frame:
    width: int = 760
    height: int = 300
    left: int = 46
    right: int = 16
    top: int = 16
    bottom: int = 40

    def x(self, value: float, n: int) -> float:
        inner = self.width - self.left - self.right
        return self.left + (inner * (value - 1) / (n - 1) if n > 1 else inner / 2)

    def y(self, value: float, low: float, high: float) -> float:
        inner = self.height - self.top - self.bottom
        return self.top + inner * (1 - (value - low) / (high - low))


def _axes(f: _Frame, n_steps: int, low: int, high: int, y_label: str) -> list[str]:
    parts = []
    for tick in range(low, high + 1):
        y = f.y(tick, low, high)
        parts.append(f'<line x1="{f.left}" x2="{f.width - f.right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{f.left - 8}" y="{y + 4:.1f}" text-anchor="end" class="tick">{tick}</text>')
    for step in range(1, n_steps + 1):
        x = f.x(step, n_steps)
        y = f.height - f.bottom + 18
        parts.append(f'<text x="{x:.1f}" y="{y}" text-anchor="middle" class="tick">{step}</text>')
    parts.append(f'<text x="{f.width / 2:.0f}" y="{f.height - 4}" text-anchor="middle" class="axis">step</text>')
    mid = (f.top + f.height - f.bottom) / 2
    parts.append(
        f'<text x="12" y="{mid:.0f}" text-anchor="middle" class="axis" transform="rotate(-90 12 {mid:.0f})">'
        f"{esc(y_label)}</text>"
    )
    return parts


def _series(f: _Frame, s: Series, color: str, n_steps: int, low: int, high: int) -> list[str]:
    pts = [(f.x(x, n_steps), f.y(y, low, high)) for x, y in sorted(s.points)]
    title = f"<title>{esc(s.name)}</title>"
    parts = []
    if len(pts) > 1:
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2.5">{title}</polyline>')
    for x, y in sorted(s.points):
        cx, cy = f.x(x, n_steps), f.y(y, low, high)
        tip = f"<title>{esc(s.name)}: step {x}, {y:.2g}</title>"
        if x in s.stops:
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="#fff" stroke="{color}" stroke-width="2.5">'
                         f"{tip}</circle>")  # fmt: skip
        else:
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{color}">{tip}</circle>')
    return parts


def line_chart(series: list[Series], n_steps: int, *, y_label: str, low: int = 1, high: int = 5,
               label: str = "") -> Markup:  # fmt: skip
    """One line per series across steps 1..n_steps on a fixed low..high scale, with a legend.
    A hollow marker is a step after which that learner would not continue."""
    f = _Frame()
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {f.width} {f.height}" role="img" class="chart" '
        f'aria-label="{esc(label or y_label)}">',
        *_axes(f, max(n_steps, 1), low, high, y_label),
    ]
    for i, s in enumerate(series):
        parts += _series(f, s, PALETTE[i % len(PALETTE)], max(n_steps, 1), low, high)
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(names: list[str]) -> list[tuple[str, str]]:
    """(colour, name) pairs in the order the chart draws its series."""
    return [(PALETTE[i % len(PALETTE)], name) for i, name in enumerate(names)]


@dataclass
class Interval:
    label: str
    delta: float
    low: float | None
    high: float | None
    flag: str = ""


_FLAG_COLORS = {"worse": "#b2182b", "better": "#2166ac", "": "#495057"}


def nice_ticks(span: float) -> list[float]:
    """Round tick values within +-span, at most four on each side of 0."""
    step = next((t for t in (0.05, 0.1, 0.2, 0.25, 0.5) if span / t <= 4), 1.0)
    n = int(span / step + 1e-9)
    return [round(i * step, 4) for i in range(-n, n + 1)]


def forest_plot(rows: list[Interval], *, label: str = "B − A", bold_first: bool = True) -> Markup:
    """One row per interval: a point at the difference and a line across its interval, around 0.
    The first row (the overall difference) is bold unless `bold_first` is false."""
    width, left, right, row_h, top = 760, 190, 24, 26, 24
    ends = [abs(v) for r in rows for v in (r.delta, r.low, r.high) if v is not None]
    span = max([0.25, *ends]) * 1.1
    height = top + row_h * len(rows) + 28

    def x(v: float) -> float:
        return left + (width - left - right) * (v + span) / (2 * span)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart forest" '
        f'aria-label="{esc(label)}">',
        f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{top - 8}" y2="{height - 24}" class="zero"/>',
    ]
    for tick in nice_ticks(span):
        parts.append(f'<text x="{x(tick):.1f}" y="{height - 8}" text-anchor="middle" class="tick">{tick:+.2f}</text>')
    parts.append(f'<text x="{left - 10}" y="{height - 8}" text-anchor="end" class="axis">{esc(label)}</text>')
    for i, r in enumerate(rows):
        y = top + row_h * i + row_h / 2
        color = _FLAG_COLORS.get(r.flag, _FLAG_COLORS[""])
        weight = ' font-weight="700"' if i == 0 and bold_first else ""
        parts.append(f'<text x="{left - 10}" y="{y + 4:.1f}" text-anchor="end" class="rowlabel"{weight}>'
                     f"{esc(r.label)}</text>")  # fmt: skip
        if r.low is not None and r.high is not None:
            parts.append(f'<line x1="{x(r.low):.1f}" x2="{x(r.high):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                         f'stroke="{color}" stroke-width="3" stroke-linecap="round"/>')  # fmt: skip
        tip = f"{esc(r.label)}: {r.delta:+.3f}" + ("" if r.low is None else f" [{r.low:+.3f}, {r.high:+.3f}]")
        parts.append(f'<circle cx="{x(r.delta):.1f}" cy="{y:.1f}" r="6" fill="{color}"><title>{tip}</title></circle>')
    parts.append("</svg>")
    return Markup("".join(parts))
