"""The session page's tree (dashboard/trace.py): spans under their parents, v2 events under
their agents, errors under their trigger, orphans and cycles kept visible, 10k nodes."""

import uuid
from decimal import Decimal

from dashboard import trace
from dashboard.trace import Row

T0 = 1_700_000_000.0


def ev(kind="actions", at=0.0, dur=0.5, **fields) -> Row:
    return Row(
        id=fields.pop("id", uuid.uuid4()), event_type=kind, init=T0 + at,
        end=None if dur is None else T0 + at + dur, **fields,
    )  # fmt: skip


def build(rows, agents=None, end=60.0):
    return trace.build(
        rows, agents=agents or {}, session_start=T0, session_end=T0 + end, now=T0 + 1000
    )


def test_spans_nest_under_their_parents_and_errors_under_their_trigger():
    root = ev("actions", 0, 10, name="session", span_id="a" * 16)
    agent = ev("actions", 1, 8, name="Researcher.agent", span_id="b" * 16, parent_span_id="a" * 16)
    tool = ev("tools", 2, 1, name="search", span_id="c" * 16, parent_span_id="b" * 16)
    # An OTLP error carries its span's ids too; it hangs under the span's own event.
    error = ev("errors", 3, None, name="ValueError", span_id="c" * 16,
               parent_span_id="b" * 16, trigger_id=tool.id)  # fmt: skip
    tree = build([root, agent, tool, error])
    assert tree.roots == [str(root.id)]
    assert tree.path_to(str(error.id)) == [str(root.id), str(agent.id), str(tool.id), str(error.id)]
    # Error counts bubble up so a collapsed row still shows them.
    assert [tree.nodes[str(x.id)].errors_below for x in (root, agent, tool, error)] == [1, 1, 1, 1]
    assert tree.nodes[str(error.id)].end is None  # instant: a marker, never a bar
    assert [tree.nodes[str(x.id)].number for x in (root, agent, tool, error)] == [1, 2, 3, 4]


def test_v2_events_are_grouped_by_named_agent_with_sums():
    a1, a2 = uuid.uuid4(), uuid.uuid4()
    llm = ev("llms", 1, 2, model="gpt-4o", agent_id=a1, tokens=150, cost=Decimal("0.002"))
    tool = ev("tools", 2, 1, name="lookup", agent_id=a1)
    err = ev("errors", 2.5, None, name="KeyError", agent_id=a1, trigger_id=tool.id)
    other = ev("llms", 5, 1, model="claude", agent_id=a2, tokens=10, cost=None)
    loose = ev("actions", 0, 0.1, name="setup")
    tree = build([loose, llm, tool, err, other], agents={a1: "planner", a2: ""})
    g1, g2 = f"agent:{a1}", f"agent:{a2}"
    assert tree.roots == [str(loose.id), g1, g2]
    planner = tree.nodes[g1]
    assert (planner.kind, planner.name, planner.number) == ("agent", "planner", None)
    assert planner.children == [str(llm.id), str(tool.id)]
    assert tree.nodes[str(tool.id)].children == [str(err.id)]
    assert (planner.start, planner.end) == (T0 + 1, T0 + 3)
    assert planner.tokens == 150 and planner.cost == Decimal("0.002") and planner.errors_below == 1
    # An agent without a name is named by its id; its unknown cost stays unknown, never 0.
    assert tree.nodes[g2].name == f"agent {str(a2)[:8]}"
    assert tree.nodes[g2].cost is None and tree.nodes[g2].cost_unknown
    assert tree.nodes[str(llm.id)].agent == "planner"


def test_an_orphan_whose_parent_never_arrived_stays_at_the_top_flagged():
    child = ev("tools", 1, 1, span_id="c" * 16, parent_span_id="f" * 16)
    tree = build([child])
    assert tree.roots == [str(child.id)]
    assert tree.nodes[str(child.id)].orphan


def test_a_cycle_of_parents_is_cut_and_every_event_is_shown_once():
    a = ev("actions", 0, 1, span_id="a" * 16, parent_span_id="c" * 16)
    b = ev("actions", 1, 1, span_id="b" * 16, parent_span_id="a" * 16)
    c = ev("actions", 2, 1, span_id="c" * 16, parent_span_id="b" * 16)
    selfish = ev("actions", 3, 1, span_id="d" * 16, parent_span_id="d" * 16)
    tree = build([a, b, c, selfish])
    seen = []
    stack = list(tree.roots)
    while stack:
        key = stack.pop()
        seen.append(key)
        stack.extend(tree.nodes[key].children)
    assert sorted(seen) == sorted(str(x.id) for x in (a, b, c, selfish))
    assert sum(tree.nodes[k].cut for k in seen) == 1  # one link dropped to break the loop
    assert tree.nodes[str(selfish.id)].orphan  # its own parent: treated as missing


def test_clock_skewed_events_are_flagged_and_widen_the_axis():
    early = ev("llms", -5, 1)
    inside = ev("tools", 1, 1)
    late = ev("actions", 70, 2)  # the session ended at 60 s
    tree = build([early, inside, late])
    assert tree.skewed == 2
    assert [tree.nodes[str(x.id)].skewed for x in (early, inside, late)] == [True, False, True]
    assert (tree.start, tree.end) == (T0 - 5, T0 + 72)
    row = trace.row_json(tree.nodes[str(inside.id)], tree)
    assert row["at"] == 6000.0 and row["dur"] == 1000.0
    assert trace.axis(tree)["unit"] == ("s", 1.0)


def test_time_units_follow_the_length():
    assert [trace.time_unit(s)[0] for s in (0.5, 30, 600, 20_000)] == ["ms", "s", "min", "h"]


def test_ten_thousand_nodes_deep_and_wide_page_and_focus():
    rows = [ev("actions", 0, 100, span_id=f"{0:016x}")]
    for i in range(1, 10_000):
        # A chain 2,000 deep, the rest fanned out under the root: deep and wide at once.
        parent = i - 1 if i < 2000 else 0
        rows.append(ev("tools" if i % 3 else "llms", i * 0.001, 0.0005,
                       span_id=f"{i:016x}", parent_span_id=f"{parent:016x}"))  # fmt: skip
    tree = build(rows, end=100)  # a 2,000-deep chain: no recursion limit to hit
    assert len(tree.nodes) == 10_000 and tree.roots == [str(rows[0].id)]
    deepest = str(rows[1999].id)
    assert len(tree.path_to(deepest)) == 2000
    top = trace.level(tree, str(rows[0].id), offset=0, limit=200)
    assert top["total"] == 1 + 8000 and len(top["rows"]) == 200
    levels = trace.focus_levels(tree, str(rows[9999].id), limit=200)
    assert [lv["parent"] for lv in levels] == [None, str(rows[0].id)]
    assert str(rows[9999].id) in [r["key"] for r in levels[-1]["rows"]]
    assert levels[-1]["offset"] % 200 == 0


def test_children_of_the_sessions_own_root_span_are_top_rows_not_orphans():
    child = ev("actions", 1, 1, span_id="c" * 16, parent_span_id="a" * 16)
    tree = trace.build(
        [child], agents={}, session_start=T0, session_end=T0 + 5, now=T0, root_span_id="a" * 16
    )
    assert tree.roots == [str(child.id)] and not tree.nodes[str(child.id)].orphan
