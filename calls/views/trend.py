"""The reports' trend chart: confirmation, cancel, answer and return rates and charges per day
(or week), as SVG geometry the template draws on the server (no script, no inline style: the
strict CSP holds).

Rates share the left axis (0-100%); charges are bars on their own right axis, scaled to the
range's most expensive day. A day without a rate (no answered or final calls) breaks its line
rather than dropping it to zero. Each series has its own colour (Okabe-Ito, in robodash.css),
dash pattern and marker shape, and is labelled at its end, so colour is never the only cue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from django.utils.translation import gettext_lazy as _

from calls.figures.stats import Figures
from calls.formatting import money

PLOT_LEFT = 48.0
PLOT_TOP = 10.0
PLOT_WIDTH = 700.0
PLOT_HEIGHT = 200.0
VIEW_HEIGHT = PLOT_TOP + PLOT_HEIGHT + 30.0  # the dates under the axis
# Right of the plot: the charges axis' labels, then the lines' end labels in a column of their
# own, so that a long amount never runs into them. Widths are estimated from the text at the
# chart's 10 px (a glyph is at most about 6.2 px), as the server cannot measure it.
AXIS_GAP = 6.0
GLYPH_WIDTH = 6.2
END_LABEL_WIDTH = 96.0
END_LABEL_SPACING = 12.0  # vertical, between two lines' end labels
BAR_SHARE = 0.6  # of the space between two points
RATE_TICKS = (0, 25, 50, 75, 100)
DATE_LABELS = 6  # at most, evenly spread

# key, label, the Figures property; drawn in this order, the first on top in the legend.
RATE_SERIES = (
    ("confirm", _("Confirmation rate"), "confirmation_rate"),
    ("cancel", _("Cancel rate"), "cancel_rate"),
    ("answer", _("Answer rate"), "answer_rate"),
    # Of the parcels of the orders that arrived that day: it fills in as they are delivered.
    ("return", _("Return rate"), "return_rate"),
)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    when: dt.date
    value: Decimal

    @property
    def xy(self) -> str:
        return f"{self.x:.1f},{self.y:.1f}"


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    lines: list[str]  # each an SVG `points` list; a day without a rate breaks the line
    points: list[Point]
    label_y: float = 0.0  # its end label's baseline: by its last point, clear of the others

    @property
    def last(self) -> Point | None:
        return self.points[-1] if self.points else None


@dataclass(frozen=True)
class ChargeBar:
    x: float
    y: float
    width: float
    height: float
    when: dt.date
    charges: Decimal


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class DateLabel:
    x: float
    when: dt.date


@dataclass(frozen=True)
class TrendChart:
    unit: str  # "day" or "week"
    series: list[Series]
    bars: list[ChargeBar]
    rate_ticks: list[Tick]
    charge_top: Decimal  # the right axis' top, in rupees
    dates: list[DateLabel]
    rows: list[tuple[dt.date, Figures]]  # the chart's data, for its table
    end_label_x: float  # the lines' end labels, right of the charges axis' labels
    view_width: float
    view_height: float = VIEW_HEIGHT
    plot_left: float = PLOT_LEFT
    plot_right: float = PLOT_LEFT + PLOT_WIDTH
    plot_top: float = PLOT_TOP
    plot_bottom: float = PLOT_TOP + PLOT_HEIGHT

    @property
    def has_data(self) -> bool:
        return any(
            figures.calls or figures.delivered or figures.returned for _, figures in self.rows
        )


def _x(index: int, count: int) -> float:
    if count == 1:
        return PLOT_LEFT + PLOT_WIDTH / 2
    return PLOT_LEFT + PLOT_WIDTH * index / (count - 1)


def _rate_y(rate: Decimal) -> float:
    return PLOT_TOP + PLOT_HEIGHT * float(100 - rate) / 100


def _charge_top(largest: Decimal) -> Decimal:
    """A round top for the charges axis: 1, 2 or 5 times a power of ten, at least `largest`."""
    if largest <= 0:
        return Decimal(1)
    power = Decimal(10) ** (largest.adjusted())
    for step in (1, 2, 5, 10):
        top = power * step
        if top >= largest:
            return top.quantize(Decimal(1), rounding=ROUND_CEILING) if top >= 1 else top
    return largest  # not reached


def trend_chart(rows: list[tuple[dt.date, Figures]], *, unit: str = "day") -> TrendChart:
    """The geometry of the chart of `rows` (oldest first)."""
    count = len(rows)
    series = []
    for key, label, field in RATE_SERIES:
        lines: list[str] = []
        points: list[Point] = []
        run: list[Point] = []
        for index, (when, figures) in enumerate(rows):
            value = getattr(figures, field)
            if value is None:
                if run:
                    lines.append(" ".join(p.xy for p in run))
                run = []
                continue
            point = Point(_x(index, count), _rate_y(value), when, value)
            run.append(point)
            points.append(point)
        if run:
            lines.append(" ".join(p.xy for p in run))
        series.append(Series(key, str(label), lines, points))

    charge_top = _charge_top(max((f.charges for _, f in rows), default=Decimal(0)))
    slot = PLOT_WIDTH / max(count - 1, 1)
    width = min(slot * BAR_SHARE, 40.0)
    bars = []
    for index, (when, figures) in enumerate(rows):
        if figures.charges <= 0:
            continue
        height = PLOT_HEIGHT * float(figures.charges / charge_top)
        bars.append(
            ChargeBar(
                round(_x(index, count) - width / 2, 1),
                round(PLOT_TOP + PLOT_HEIGHT - height, 1),
                round(width, 1),
                round(height, 1),
                when,
                figures.charges,
            )
        )
    every = max(1, -(-count // DATE_LABELS))
    dates = [
        DateLabel(_x(index, count), when)
        for index, (when, _) in enumerate(rows)
        if index % every == 0 or index == count - 1
    ]
    ticks = [Tick(_rate_y(Decimal(t)), f"{t}%") for t in RATE_TICKS]
    axis_width = GLYPH_WIDTH * max(len(money(charge_top)), len(money(0)))
    end_label_x = PLOT_LEFT + PLOT_WIDTH + AXIS_GAP + axis_width + 2 * AXIS_GAP
    return TrendChart(
        unit,
        _spread_end_labels(series),
        bars,
        ticks,
        charge_top,
        dates,
        rows,
        end_label_x=round(end_label_x, 1),
        view_width=round(end_label_x + END_LABEL_WIDTH, 1),
    )


def _spread_end_labels(series: list[Series]) -> list[Series]:
    """Each line's end label by its last point, moved down just enough to clear the label
    above it (two rates often end close together), then the column moved up as a whole if it
    ran past the plot's bottom."""
    ended = sorted((s for s in series if s.last), key=lambda s: s.last.y if s.last else 0)
    wanted = [(s.last.y if s.last else 0) + 4 for s in ended]  # 4: a 10 px text's middle
    placed: list[float] = []
    for y in wanted:
        placed.append(max(y, placed[-1] + END_LABEL_SPACING) if placed else y)
    overflow = max(0.0, (placed[-1] if placed else 0) - (PLOT_TOP + PLOT_HEIGHT + 4))
    at = {s.key: round(y - overflow, 1) for s, y in zip(ended, placed, strict=True)}
    return [
        Series(s.key, s.label, s.lines, s.points, at[s.key]) if s.key in at else s for s in series
    ]
