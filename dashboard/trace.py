"""A session as a tree, for the session page's trace view: pure functions over event rows, no
database (sessions/queries.py session_trace_rows reads the rows).

Where each event hangs:
- an error that names its trigger event hangs under that event (v2 errors, OTLP ERROR spans);
- an OTLP span hangs under its parent span (parent_span_id); a span whose parent never arrived
  (an orphan) stays at the top and is flagged;
- any other event of a v2 session hangs under its agent's row ("agent:<uuid>"), named from the
  agents table, when it has an agent; events without one stay at the top.
A cycle of parents (a broken exporter can send one) is cut where it is found: the node that
closes it goes to the top, flagged, so every event is shown exactly once.

Numbers are 1-based positions in time order (init_timestamp, then id): the same number the
event list, its tabs and the waterfall show for the event.
"""

import gc
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

# An event this far outside [session start, session end] is flagged as clock-skewed: SDKs stamp
# the session end before flushing their last batch, so a few hundred ms past it is normal.
SKEW_TOLERANCE_S = 1.0
AGENT_PREFIX = "agent:"


class Row(NamedTuple):
    """One event as the tree needs it, in events.storage timeline_rows' column order (the
    storage gives plain tuples of this shape; tests name the fields). Times in epoch seconds
    (float), end None if unknown; ids as text or UUIDs (the tree keys them by their text)."""

    id: object
    event_type: str
    init: float
    end: float | None
    name: str = ""
    model: str = ""
    tokens: int = 0
    agent_id: object = None
    cost: Decimal | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    trigger_id: object = None


@dataclass(slots=True)
class Node:
    key: str  # the event id, or "agent:<uuid>" for an agent's group row
    kind: str  # an event type, or "agent"
    name: str
    agent: str  # the agent's name ("" when none)
    number: int | None  # 1-based time-order number; None for agent rows
    start: float
    end: float | None
    tokens: int = 0
    cost: Decimal | None = None
    cost_unknown: bool = False  # an LLM call below (or this one) has no known cost
    parent: str | None = None
    children: list[str] = field(default_factory=list)
    errors_below: int = 0  # error events in this node's subtree, itself included
    orphan: bool = False  # its parent span never arrived
    cut: bool = False  # its parent link closed a cycle and was dropped
    skewed: bool = False  # stamped outside the session's start..end


@dataclass
class Tree:
    nodes: dict[str, Node]
    roots: list[str]
    start: float  # the time axis: from the earliest of session start and first event
    end: float  # to the latest of session end (or now) and last event end
    skewed: int  # how many events are stamped outside the session

    def path_to(self, key: str) -> list[str]:
        """Keys from a root down to `key` (inclusive); [] for an unknown key."""
        if key not in self.nodes:
            return []
        path = [key]
        while (parent := self.nodes[path[-1]].parent) is not None:
            path.append(parent)
        return path[::-1]

    def children_of(self, key: str | None) -> list[str]:
        return self.roots if key is None else self.nodes[key].children


def agent_label(agent_id, agents: dict) -> str:
    """An agent's name, or "agent <first 8 of its id>"; `agents` keyed by the id's text."""
    text = str(agent_id)
    return agents.get(text) or f"agent {text[:8]}"


def build(
    rows,
    *,
    agents: dict,
    session_start: float,
    session_end: float | None,
    now: float,
    root_span_id: str | None = None,
) -> Tree:
    """The tree of `rows` (Row-shaped tuples, in time order). `agents` maps agent ids (UUID or
    text) to names; `session_end` is None while the session runs (then `now` ends the axis);
    `root_span_id` is an OTLP session's root span, kept on the session rather than as an event,
    so its children are top-level rows and not orphans. O(n); rows out of time order cost a
    sort of each child list.

    This runs for every first look at a session (10k events: bench/session_page.py "cold"), so
    it works on the storage's tuples and text ids as they come: no per-row objects besides the
    nodes themselves."""
    agents = {str(k): v for k, v in agents.items()}
    nodes: dict[str, Node] = {}
    by_span: dict[str, str] = {}
    links: list[tuple] = []
    labels: dict = {None: ""}  # agent id text -> label shown on its events
    skewed = 0
    low = session_start - SKEW_TOLERANCE_S
    high = None if session_end is None else session_end + SKEW_TOLERANCE_S
    in_order, previous = True, float("-inf")
    for number, values in enumerate(rows, start=1):
        (i, kind, init, end, name, model, tokens, agent_id, cost, span_id, parent_span_id,
         trigger) = values  # fmt: skip
        key = i if type(i) is str else str(i)
        agent = None if agent_id is None else str(agent_id)
        label = labels.get(agent)
        if label is None:
            # OTLP spans name an agent only when it is a known one: otherwise their agent is a
            # span of the tree, shown as such.
            label = labels[agent] = (
                "" if span_id and agent not in agents else agent_label(agent, agents)
            )
        out = init < low or (high is not None and (end or init) > high)
        skewed += out
        if init < previous:
            in_order = False
        previous = init
        nodes[key] = node = Node(
            key, kind, model if kind == "llms" and model else (name or ""), label, number, init,
            end if end is not None and end >= init else None, tokens or 0, cost,
            kind == "llms" and cost is None, None, [], 0, False, False, out,
        )  # fmt: skip
        # Errors carry their span's id too (events/spans.py): the span's own event owns it.
        if span_id and kind != "errors" and span_id not in by_span:
            by_span[span_id] = key
        links.append((key, node, trigger, parent_span_id, span_id, agent))

    parents: dict[str, str] = {}
    groups: list[str] = []
    for key, node, trigger, parent_span_id, span_id, agent in links:
        trigger = None if trigger is None else str(trigger)
        if trigger and trigger != key and trigger in nodes:
            parents[key] = trigger
        elif parent_span_id:
            parent = by_span.get(parent_span_id)
            if parent is not None and parent != key:
                parents[key] = parent
            elif parent_span_id != root_span_id:
                node.orphan = True
        elif span_id is None and agent:
            group = AGENT_PREFIX + agent
            if group not in nodes:
                label = agent_label(agent, agents)
                nodes[group] = Node(group, "agent", label, label, None, node.start, None)
                groups.append(group)
            parents[key] = group

    _cut_cycles(parents, nodes)
    roots: list[str] = []
    for key, node in nodes.items():  # events in time order, then the agents' rows
        parent = parents.get(key)
        node.parent = parent
        if parent is None:
            roots.append(key)
        else:
            nodes[parent].children.append(key)
    _sort_and_sum(nodes, roots, children_in_order=in_order)

    first = min((n.start for n in nodes.values()), default=session_start)
    last_end = max((n.end or n.start for n in nodes.values()), default=session_start)
    end = session_end if session_end is not None else now
    return Tree(
        nodes=nodes,
        roots=roots,
        start=min(session_start, first),
        end=max(end, last_end, session_start),
        skewed=skewed,
    )


def _cut_cycles(parents: dict[str, str], nodes: dict[str, Node]) -> None:
    """Drop the parent link that closes each cycle (in place). Each node is walked once."""
    state: dict[str, int] = {}  # 1: on the current walk, 2: done
    for start in list(parents):
        walk, key = [], start
        while key in parents and state.get(key) is None:
            state[key] = 1
            walk.append(key)
            key = parents[key]
        if state.get(key) == 1:  # came back onto this walk: key closes a cycle
            del parents[key]
            nodes[key].cut = True
        for k in walk:
            state[k] = 2


def _sort_and_sum(nodes: dict[str, Node], roots: list[str], *, children_in_order: bool) -> None:
    """Children in time order; subtree sums (errors; and for agent rows: span, tokens, cost)
    computed bottom-up without recursion (a 10k-deep chain must not overflow the stack).

    Children are appended in the rows' order, so with rows in time order (as the storage gives
    them) they are sorted already; only event rows are children (agent rows are roots)."""
    order: list[str] = []
    stack = list(roots)
    while stack:
        key = stack.pop()
        order.append(key)
        stack.extend(nodes[key].children)
    for key in reversed(order):  # every child before its parent
        node = nodes[key]
        if not children_in_order:
            node.children.sort(key=lambda k: (nodes[k].start, nodes[k].number or 0))
        node.errors_below += node.kind == "errors"
        if node.parent is not None:
            nodes[node.parent].errors_below += node.errors_below
        if node.kind == "agent":
            kids = [nodes[k] for k in node.children]
            node.start = min(k.start for k in kids)
            node.end = max((k.end or k.start) for k in kids)
            node.tokens = sum(k.tokens for k in kids)
            known = [k.cost for k in kids if k.cost is not None]
            node.cost = sum(known, Decimal(0)) if known else None
            node.cost_unknown = any(k.cost_unknown for k in kids)
    roots.sort(key=lambda k: (nodes[k].start, nodes[k].number or 0))


def row_json(node: Node, tree: Tree) -> dict:
    """One row for the page: times as ms from the axis start (`dur` None for an instant
    event, drawn as a marker), cost a decimal string or None (unknown)."""
    return {
        "key": node.key,
        "n": node.number,
        "kind": node.kind,
        "name": node.name,
        "agent": node.agent,
        "at": round((node.start - tree.start) * 1000, 3),
        "dur": round((node.end - node.start) * 1000, 3) if node.end is not None else None,
        "tokens": node.tokens,
        # "0.001", not the column's "0.0010000000" (nor normalize()'s "1E-3").
        "cost": None if node.cost is None else format(node.cost.normalize(), "f"),
        "cost_unknown": node.cost_unknown,
        "children": len(node.children),
        "errors": node.errors_below,
        "orphan": node.orphan,
        "cut": node.cut,
        "skewed": node.skewed,
    }


def level(tree: Tree, parent: str | None, *, offset: int, limit: int) -> dict:
    """A page of `parent`'s children (the roots for None): {"parent", "offset", "total",
    "rows"}. KeyError for an unknown parent."""
    keys = tree.children_of(parent)
    offset = max(0, min(offset, max(len(keys) - 1, 0)))
    return {
        "parent": parent,
        "offset": offset,
        "total": len(keys),
        "rows": [row_json(tree.nodes[k], tree) for k in keys[offset : offset + limit]],
    }


def focus_levels(tree: Tree, key: str, *, limit: int) -> list[dict]:
    """The pages that show `key` with its ancestors expanded: for each level from the roots
    down, the page of `limit` rows that holds the next node on the path."""
    path = tree.path_to(key)
    levels = []
    parent = None
    for step in path:
        index = tree.children_of(parent).index(step)
        levels.append(level(tree, parent, offset=index - index % limit, limit=limit))
        parent = step
    return levels


def axis(tree: Tree) -> dict:
    """The shared time axis: its length in ms and the unit a person reads it in."""
    length_ms = max((tree.end - tree.start) * 1000, 0.001)
    return {"length_ms": round(length_ms, 3), "unit": time_unit(length_ms / 1000)}


def time_unit(seconds: float) -> tuple[str, float]:
    """(unit, seconds per unit) for an axis `seconds` long: ms under 2 s, s under 2 min, min
    under 2 h, else h."""
    if seconds < 2:
        return ("ms", 0.001)
    if seconds < 120:
        return ("s", 1.0)
    if seconds < 7200:
        return ("min", 60.0)
    return ("h", 3600.0)


# --- Reading a session's tree (the one place that touches the database) ----------------------


# Built trees of the last few sessions asked for, per process, keyed by everything the tree is
# made of: a session's events never change once stored (their ids are idempotency keys), so
# its event count, end, root span and agents say whether a kept tree is still the tree. Paging
# through a 10k-event tree then reads the events once, not once per page.
_KEPT: "OrderedDict[tuple, Tree]" = OrderedDict()
KEEP_TREES = 8


def session_tree(session, *, limit: int, now: float) -> Tree:
    """The tree of a session's first `limit` events: one query (its agents) when this process
    built the same tree before, two (and the build) otherwise. A running session's axis ends
    at `now`, so its tree is rebuilt each time."""
    from events import storage
    from sessions.queries import agent_names
    from sessions.totals import event_count

    agents = agent_names(session)
    root = session.root_span
    root_span_id = root.get("span_id") if isinstance(root, dict) else None
    key = (session.id, event_count(session), session.end_timestamp, root_span_id, limit,
           tuple(sorted((str(k), v) for k, v in agents.items())))  # fmt: skip
    if session.end_timestamp is not None and key in _KEPT:
        _KEPT.move_to_end(key)
        return _KEPT[key]
    rows = storage.backend().timeline_rows(session.id, limit)
    # 10k nodes and their child lists are 20k+ new containers: the cyclic collector would run
    # its full collection over the whole process heap in the middle of the build (the cold
    # request's p95 doubled). Nothing built here is cyclic, so it waits until the build is done.
    collecting = gc.isenabled()
    gc.disable()
    try:
        tree = build(
            rows,
            agents=agents,
            session_start=session.init_timestamp.timestamp(),
            session_end=session.end_timestamp.timestamp() if session.end_timestamp else None,
            now=now,
            root_span_id=root_span_id,
        )
    finally:
        if collecting:
            gc.enable()
    if session.end_timestamp is not None:
        _KEPT[key] = tree
        while len(_KEPT) > KEEP_TREES:
            _KEPT.popitem(last=False)
    return tree

