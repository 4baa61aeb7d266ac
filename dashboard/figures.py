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


def duration_text(ms: float | None) -> str:
    """A duration as a person reads it: "instant", 420 ms, 3.2 s, 4.5 min, 1.2 h."""
    if ms is None:
        return "instant"
    if ms < 1000:
        return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    if ms < 7_200_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def waterfall(tree, *, session) -> dict:
    """The session's timeline from its tree (dashboard/trace.py), drawn as it happened.

    Lanes (y, labelled): one per agent when the session has named agents, else one per event
    kind. Events with a duration are bars exactly that long; instant events (no end, or end ==
    start) are markers, never inflated bars; errors are drawn last, on top, as red crosses. The
    x axis is in ms, s, min or h as the session's length needs (trace.time_unit); the session's
    own start and end are drawn as lines, so clock-skewed events show outside them. Hover
    numbers (#n) are the event's 1-based number in the event list; `keys` maps them to ids.
    Past WEBGL_THRESHOLD events the same traces are drawn with WebGL (scattergl) so 10k+ events
    stay interactive.
    """
    from dashboard import trace

    events = [n for n in tree.nodes.values() if n.number is not None]
    events.sort(key=lambda n: n.number)
    unit, per_unit = trace.time_unit(tree.end - tree.start)
    scale = 1 / (per_unit * 1000)  # ms -> axis unit
    # x = 0 is the session's start: an event stamped before it sits at negative x.
    origin = session.init_timestamp.timestamp()
    agents = sorted({n.agent for n in events if n.agent})
    by_agent = bool(agents)

    def lane(node) -> str:
        if by_agent:
            return escape(node.agent or "no agent")
        return TYPE_LABELS.get(node.kind, node.kind)

    large = len(events) > WEBGL_THRESHOLD
    bars: dict[str, dict] = {}
    marks: dict[str, dict] = {}
    labels: dict[tuple, str] = {}
    for node in events:
        start_ms = (node.start - origin) * 1000
        dur_ms = (node.end - node.start) * 1000 if node.end is not None else 0.0
        key = (node.kind, node.name)
        label = labels.get(key)
        if label is None:
            label = labels[key] = escape(
                f"{TYPE_LABELS.get(node.kind, node.kind)}: {node.name}"
                if node.name
                else TYPE_LABELS.get(node.kind, node.kind)
            )
        note = " · clock-skewed: outside the session" if node.skewed else ""
        custom = [node.number, label, duration_text(dur_ms or None) + note, node.tokens]
        y = lane(node)
        if dur_ms > 0 and node.kind != "errors":
            acc = bars.setdefault(node.kind, {"x": [], "y": [], "base": [], "custom": []})
            if large:
                acc["x"] += (start_ms * scale, (start_ms + dur_ms) * scale, None)
                acc["y"] += (y, y, None)
                acc["custom"] += (custom, custom, None)
            else:
                acc["x"].append(dur_ms * scale)
                acc["base"].append(start_ms * scale)
                acc["y"].append(y)
                acc["custom"].append(custom)
        else:
            acc = marks.setdefault(node.kind, {"x": [], "y": [], "custom": []})
            acc["x"].append(start_ms * scale)
            acc["y"].append(y)
            acc["custom"].append(custom)
    hover = (
        "#%{customdata[0]} %{customdata[1]}<br>%{customdata[2]} · "
        "%{customdata[3]:,} tokens<extra></extra>"
    )
    data = []
    for kind in ("actions", "apis", "tools", "llms"):  # errors go last: drawn on top
        if kind in bars:
            acc = bars[kind]
            common = {
                "name": TYPE_LABELS[kind], "legendgroup": kind, "y": acc["y"],
                "customdata": acc["custom"], "hovertemplate": hover,
            }  # fmt: skip
            if large:
                data.append({**common, "type": "scattergl", "mode": "lines", "x": acc["x"],
                             "line": {"color": TYPE_COLOURS[kind], "width": 10}})  # fmt: skip
            else:
                data.append({**common, "type": "bar", "orientation": "h", "x": acc["x"],
                             "base": acc["base"], "width": 0.6,
                             "marker": {"color": TYPE_COLOURS[kind],
                                        "line": {"color": "#ffffff", "width": 0.5}}})  # fmt: skip
    for kind in ("actions", "apis", "tools", "llms", "errors"):
        if kind in marks:
            acc = marks[kind]
            error = kind == "errors"
            data.append(
                {
                    "type": "scattergl" if large else "scatter",
                    "mode": "markers",
                    "name": TYPE_LABELS[kind] + ("" if error else " (instant)"),
                    "legendgroup": kind,
                    "x": acc["x"],
                    "y": acc["y"],
                    "customdata": acc["custom"],
                    "hovertemplate": hover,
                    "marker": {
                        "color": TYPE_COLOURS[kind],
                        "symbol": "x" if error else "line-ns-open",
                        "size": 12 if error else 14,
                        "line": {"width": 2, "color": TYPE_COLOURS[kind]},
                    },
                }
            )
    if by_agent:
        lanes = [escape(a) for a in agents] + (
            ["no agent"] if any(not n.agent for n in events) else []
        )
    else:
        lanes = [TYPE_LABELS[k] for k in TYPE_LABELS if any(n.kind == k for n in events)]
    shapes = []
    session_lines = [session.init_timestamp.timestamp()]
    if session.end_timestamp is not None:
        session_lines.append(session.end_timestamp.timestamp())
    for at in session_lines:
        x = (at - origin) * 1000 * scale
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x,
                       "y0": 0, "y1": 1, "line": {"color": "#98a2b3", "dash": "dot",
                                                  "width": 1}})  # fmt: skip
    low, high = (tree.start - origin) * 1000 * scale, (tree.end - origin) * 1000 * scale
    pad = 0.01 * (high - low)
    layout = _layout(
        height=max(180, 46 * len(lanes) + 110),
        barmode="overlay",
        hovermode="closest",
        margin={"l": 130, "r": 20, "t": 30, "b": 45},
        shapes=shapes,
        xaxis={
            "title": {"text": f"{unit} since the session started"},
            "gridcolor": "#eaecf0",
            "zeroline": False,
            "range": [low - pad, high + pad],
        },
        yaxis={
            "type": "category",
            "categoryorder": "array",
            "categoryarray": lanes,
            "autorange": "reversed",
            "gridcolor": "#f2f4f7",
            "automargin": True,
        },
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    )
    return {
        "data": data,
        "layout": layout,
        "large": large,
        "events": len(events),
        "skewed": tree.skewed,
        "unit": unit,
        # Event ids by number (keys[n - 1]): a click selects the event in the trace view.
        "keys": [n.key for n in events],
    }
