"""Plotly figures as plain figure dicts ({"data", "layout"}), rendered in the browser by the
plotly.js that ships inside the plotly package.

Plain dicts rather than plotly.graph_objects: the figure JSON is identical and building it costs
microseconds instead of the milliseconds graph_objects' validation takes per trace.

Every string that came from an agent (model names, event names) is HTML-escaped here: Plotly
renders labels and hover text as a subset of HTML.
"""

import math
from datetime import date, datetime
from html import escape

STATE_COLOURS = {
    "Success": "#12b76a",
    "Fail": "#f04438",
    "Indeterminate": "#f79009",
    "Running": "#2e90fa",
}
TYPE_COLOURS = {
    "llms": "#7a5af8",
    "tools": "#0ba5ec",
    "actions": "#12b76a",
    "errors": "#f04438",
    "apis": "#f79009",
}
TYPE_LABELS = {
    "llms": "LLM call",
    "tools": "Tool",
    "actions": "Action",
    "errors": "Error",
    "apis": "API call",
}
# Past this many events the waterfall draws WebGL line segments instead of SVG bars.
WEBGL_THRESHOLD = 2000


def _layout(**extra) -> dict:
    layout = {
        "margin": {"l": 50, "r": 20, "t": 30, "b": 40},
        "height": 280,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": "system-ui, sans-serif", "size": 12, "color": "#344054"},
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        "xaxis": {"gridcolor": "#eaecf0"},
        "yaxis": {"gridcolor": "#eaecf0", "rangemode": "tozero"},
        "hovermode": "x unified",
    }
    layout.update(extra)
    return layout


def _x(bucket) -> str:
    if isinstance(bucket, datetime):
        return bucket.strftime("%Y-%m-%d %H:00")
    if isinstance(bucket, date):
        return bucket.isoformat()
    return str(bucket)


def sessions_by_state(buckets) -> dict:
    x = [_x(b) for b, _ in buckets]
    series = [
        ("Success", "success"),
        ("Fail", "fail"),
        ("Indeterminate", "indeterminate"),
        ("Running", "running"),
    ]
    data = [
        {
            "type": "bar",
            "name": label,
            "x": x,
            "y": [getattr(t, attr) for _, t in buckets],
            "marker": {"color": STATE_COLOURS[label]},
        }
        for label, attr in series
    ]
    return {"data": data, "layout": _layout(barmode="stack")}


def cost_per_bucket(buckets) -> dict:
    x = [_x(b) for b, _ in buckets]
    data = [
        {
            "type": "bar",
            "name": "Cost (USD)",
            "x": x,
            # Floats only for drawing; every number a person reads is formatted from Decimal.
            "y": [float(t.cost) for _, t in buckets],
            "marker": {"color": "#3b5bdb"},
            "hovertemplate": "%{x}: $%{y:.4f}<extra></extra>",
        }
    ]
    top = max((float(t.cost) for _, t in buckets), default=0.0)
    return {
        "data": data,
        "layout": _layout(
            showlegend=False, yaxis={"gridcolor": "#eaecf0", "automargin": True, **usd_axis(top)}
        ),
    }


def usd_axis(top: float, *, target_ticks: int = 5) -> dict:
    """Plotly axis settings for amounts in USD from 0 to `top`: ticks at 1, 2, 2.5 or 5 times
    a power of ten ($0.50, $1.00, $1.50 ... or $0.002, $0.004 ...), labelled with as many
    decimals as the step needs (at least two), so no tick reads $0.702."""
    if top <= 0:
        return {"tickvals": [0], "ticktext": ["$0.00"], "range": [0, 1]}
    raw = top / target_ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    decimals = max(2, -math.floor(math.log10(step)) + (1 if step / magnitude == 2.5 else 0))
    count = math.ceil(top / step - 1e-9)
    values = [round(i * step, decimals) for i in range(count + 1)]
    return {
        "tickvals": values,
        "ticktext": [f"${v:,.{decimals}f}" for v in values],
        "range": [0, values[-1] * 1.05],
    }


def error_rate(buckets) -> dict:
    x = [_x(b) for b, _ in buckets]
    y = [round(100 * t.errors / t.event_total, 2) if t.event_total else None for _, t in buckets]
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Error events (% of events)",
            "x": x,
            "y": y,
            # A bucket with no events has no rate: a gap, not a line drawn through it (a bucket
            # whose events had no error is a true 0 and is drawn).
            "connectgaps": False,
            "line": {"color": STATE_COLOURS["Fail"]},
            "hovertemplate": "%{x}: %{y}%<extra></extra>",
        }
    ]
    return {
        "data": data,
        "layout": _layout(showlegend=False, yaxis={"ticksuffix": "%", "rangemode": "tozero"}),
    }


def by_model(models: dict) -> dict:
    """Tokens (stacked bars) and cost (diamonds, top axis) per model, drawn horizontally: one
    row per model whose name is never clipped (the axis makes room for it) and a height that
    grows with the number of models, the legend below the plot rather than beside it."""
    names = [escape(name) for name in models]
    costs = [float(m.cost) for m in models.values()]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": "Prompt tokens",
            "y": names,
            "x": [m.prompt_tokens for m in models.values()],
            "marker": {"color": "#7a5af8"},
            "hovertemplate": "%{y}: %{x:,} prompt tokens<extra></extra>",
        },
        {
            "type": "bar",
            "orientation": "h",
            "name": "Completion tokens",
            "y": names,
            "x": [m.completion_tokens for m in models.values()],
            "marker": {"color": "#bdb4fe"},
            "hovertemplate": "%{y}: %{x:,} completion tokens<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "Cost (USD, top axis)",
            "y": names,
            "x": costs,
            "xaxis": "x2",
            "marker": {"color": "#3b5bdb", "size": 11, "symbol": "diamond"},
            "hovertemplate": "%{y}: $%{x:.4f}<extra></extra>",
        },
    ]
    return {
        "data": data,
        "layout": _layout(
            barmode="stack",
            hovermode="closest",
            height=max(240, 90 + 34 * len(names)),
            xaxis={"title": {"text": "tokens"}, "gridcolor": "#eaecf0", "tickformat": "~s"},
            xaxis2={
                "overlaying": "x",
                "side": "top",
                "showgrid": False,
                **usd_axis(max(costs, default=0.0)),
            },
            # The first of `models` on top, every name in full.
            yaxis={"automargin": True, "autorange": "reversed", "ticksuffix": "  "},
            legend={"orientation": "h", "y": 0, "yanchor": "bottom", "x": 0, "yref": "container"},
            margin={"l": 10, "r": 20, "t": 40, "b": 80},
        ),
    }


def _event_label(event_type: str, name: str, model: str) -> str:
    label = TYPE_LABELS.get(event_type, event_type)
    detail = model or name
    return escape(f"{label}: {detail}" if detail else label)


def waterfall(rows: list[tuple], *, session_start: float) -> dict:
    """A timeline of events from rows of (id, event_type, init, end, name, model, tokens), times
    in epoch seconds (float).

    One trace per event type whatever the number of events: horizontal bars (SVG) for ordinary
    sessions, WebGL line segments past WEBGL_THRESHOLD so 10k+ events stay interactive. Row i is
    the i-th event in time order, so the chart reads top to bottom like the event list.
    """
    per_type: dict[str, dict] = {}
    large = len(rows) > WEBGL_THRESHOLD
    t0 = session_start
    span_ms = max((((r[3] or r[2]) - t0) * 1000 for r in rows), default=1.0)
    # Instant events (errors) still get a visible sliver: 0.4% of the session's span.
    min_visible = max(span_ms * 0.004, 1.0)
    labels: dict[tuple, str] = {}  # escaped once per distinct (type, name, model)
    for i, (eid, etype, init, end, name, model, tokens) in enumerate(rows):
        start_ms = round((init - t0) * 1000, 1)
        dur_ms = round((end - init) * 1000, 1) if end is not None and end > init else 0.0
        acc = per_type.get(etype)
        if acc is None:
            acc = per_type[etype] = {"x": [], "y": [], "base": [], "custom": []}
        key = (etype, name, model)
        label = labels.get(key)
        if label is None:
            label = labels[key] = _event_label(etype, name, model)
        custom = [label, dur_ms, tokens or 0]
        if large:
            # A segment is two points and a gap (None) so one trace holds every event.
            acc["x"] += (start_ms, round(start_ms + max(dur_ms, min_visible), 1), None)
            acc["y"] += (i, i, None)
            acc["custom"] += (custom, custom, None)
        else:
            acc["x"].append(max(dur_ms, min_visible))
            acc["base"].append(start_ms)
            acc["y"].append(i)
            custom.append(str(eid))
            acc["custom"].append(custom)
    # Hover text is assembled by Plotly from customdata: no per-event HTML in the payload.
    hover = "%{customdata[0]}<br>%{customdata[1]:,} ms · %{customdata[2]:,} tokens<extra></extra>"
    data = []
    for etype in TYPE_COLOURS:
        if etype not in per_type:
            continue
        acc = per_type[etype]
        colour = TYPE_COLOURS[etype]
        if large:
            data.append(
                {
                    "type": "scattergl",
                    "mode": "lines",
                    "name": TYPE_LABELS[etype],
                    "x": acc["x"],
                    "y": acc["y"],
                    "customdata": acc["custom"],
                    "hovertemplate": hover,
                    "line": {"color": colour, "width": 4},
                }
            )
        else:
            data.append(
                {
                    "type": "bar",
                    "orientation": "h",
                    "name": TYPE_LABELS[etype],
                    "x": acc["x"],
                    "base": acc["base"],
                    "y": acc["y"],
                    "customdata": acc["custom"],
                    "hovertemplate": hover,
                    # A fixed width: Plotly would otherwise size each trace's bars by the gaps
                    # between its own rows.
                    "width": 0.8,
                    "marker": {"color": colour},
                }
            )
    height = min(max(160, 18 * len(rows) + 80), 640)
    layout = _layout(
        height=height,
        barmode="overlay",
        hovermode="closest",
        bargap=0.25,
        margin={"l": 40, "r": 20, "t": 30, "b": 40},
        xaxis={
            "title": {"text": "ms since session start"},
            "gridcolor": "#eaecf0",
            "zeroline": False,
        },
        yaxis={
            "autorange": "reversed",
            "showticklabels": len(rows) <= 60,
            "title": {"text": "event #"},
            "gridcolor": "#f2f4f7",
        },
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    )
    return {"data": data, "layout": layout, "large": large, "events": len(rows)}
