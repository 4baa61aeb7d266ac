"""The export's event rows built as JSON text by Postgres, streamed by binary COPY.

`events.rows.event_row` is the reference: every row built here must parse to the same JSON
values as `orjson.dumps(event_row(event))` (key order and whitespace aside; tests/
test_export_sql.py holds them equal on every tricky shape). Why in SQL: on a 100k-event
session, turning ~1.4 KB rows into Python objects and back to JSON capped the export near a
plain psycopg fetch (~25-40k rows/s). Here Postgres writes each row's text and Python only
strips the COPY framing and joins bytes; COPY also streams, so Postgres builds the next rows
on one core while Python forwards the last ones on the other.
"""

from collections.abc import Iterator

# A COPY ... (FORMAT binary) stream: a 19-byte file header before the first tuple, then per
# tuple an int16 field count and, for our single field, an int32 length; then an int16 -1.
_FILE_HEADER = 19
_TUPLE_HEADER = 6
# Each row's text starts with a tag byte: "A" + the index of its section, or "a" + that index
# when its prompt or completion is a JSON number. Python wraps those, because only Python's
# str() of the parsed number matches event_row() ("1e+20", "1.5" for 1.50 ...). They are rare,
# so the common path stays one byte comparison per row.
_SECTION_TAG = ord("A")
_WRAP_IN_PYTHON_TAG = ord("a")

_COMMON_KEYS = ("id", "event_type", "init_timestamp", "end_timestamp", "agent_id")
_SECTION_KEYS = {
    "llms": (
        "model",
        "prompt",
        "completion",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "cost_source",
    ),
    "tools": ("name",),
    "actions": ("action_type",),
    "errors": (
        "error_type",
        "code",
        "details",
        "logs",
        "trigger_event_id",
        "trigger_event_type",
        "timestamp",
    ),
    "apis": (),
}


class _Text(str):
    """A piece of JSON text written as is (a SQL literal), not an SQL expression."""


Parts = list  # of SQL expressions and _Text pieces, concatenated in order


def _json_string(sql: str) -> Parts:
    """A nullable text column as JSON (to_json escapes quotes and control characters)."""
    return [f"coalesce(to_json({sql})::text, 'null')"]


def _quoted(sql: str, nullable: bool = True) -> Parts:
    """A value whose text needs no escaping (uuid, a number as a string), as a JSON string."""
    if not nullable:
        return [_Text('"'), sql, _Text('"')]
    return [f"""coalesce('"' || ({sql})::text || '"', 'null')"""]


def _number(sql: str) -> Parts:
    """A number or a jsonb value as JSON, null for NULL."""
    return [f"coalesce(({sql})::text, 'null')"]


def _iso(column: str, nullable: bool = True) -> Parts:
    """datetime.isoformat() of an aware UTC datetime: no fraction when microseconds are 0."""
    text = (
        f"""replace(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), """
        "'.000000+', '+')"
    )
    if not nullable:
        return [_Text('"'), text, _Text('"')]
    return [f"""coalesce('"' || {text} || '"', 'null')"""]


def _wrapped(field: str) -> Parts:
    """wrap_message_content() of payload->field, as JSON text (numbers are left to Python)."""
    value = f"(payload -> '{field}')"
    return [
        f"""CASE jsonb_typeof({value})
        WHEN 'array' THEN '{{"type": "chatml", "messages": ' || {value}::text || '}}'
        WHEN 'object' THEN CASE
            WHEN {value} ->> 'type' IN ('chatml', 'string') THEN {value}::text
            WHEN {value} ? 'messages'
                THEN '{{"type": "chatml", "messages": ' || ({value} -> 'messages')::text || '}}'
            ELSE '{{"type": "chatml", "messages": [' || {value}::text || ']}}' END
        WHEN 'string' THEN '{{"type": "string", "string": ' || {value}::text || '}}'
        WHEN 'boolean' THEN CASE WHEN {value} = 'true'
            THEN '{{"type": "string", "string": "True"}}'
            ELSE '{{"type": "string", "string": "False"}}' END
        WHEN 'number' THEN {value}::text
        ELSE 'null' END"""
    ]


def _money(column: str) -> Parts:
    """money(): trailing zeros trimmed, "0" for zero, as a JSON string."""
    return _quoted(f"trim_scale({column})")


def _promoted_fields(section: str) -> list[tuple[str, Parts]]:
    """(key, JSON of its value) for the columns event_row() puts over the payload."""
    fields = [
        ("id", _quoted("id", nullable=False)),
        ("event_type", _quoted("event_type", nullable=False)),  # one of EventType's names
        ("init_timestamp", _iso("init_timestamp", nullable=False)),
        ("end_timestamp", _iso("end_timestamp")),
        ("agent_id", _quoted("agent_id")),
    ]
    if section == "llms":
        fields += [
            ("model", _json_string("nullif(model, '')")),
            ("prompt", _wrapped("prompt")),
            ("completion", _wrapped("completion")),
            ("prompt_tokens", _number("prompt_tokens")),
            ("completion_tokens", _number("completion_tokens")),
            ("cost", _money("cost")),
            ("cost_source", _json_string("cost_source")),
        ]
    elif section == "tools":
        fields.append(("name", _json_string("nullif(name, '')")))
    elif section == "actions":
        fields.append(("action_type", _json_string("nullif(name, '')")))
    elif section == "errors":
        fields += [
            ("error_type", _json_string("nullif(name, '')")),
            ("code", _number("payload -> 'code'")),
            ("details", _number("payload -> 'details'")),
            ("logs", _number("payload -> 'logs'")),
            ("trigger_event_id", _quoted("trigger_event_id")),
            ("trigger_event_type", _number("payload -> 'trigger_event_type'")),
            ("timestamp", _iso("init_timestamp", nullable=False)),
        ]
    return fields


def _sql_array(names) -> str:
    return "ARRAY[" + ", ".join(f"'{name}'" for name in names) + "]::text[]"


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _concat(parts: Parts) -> str:
    """One concat() of the parts, adjacent text pieces merged: a chain of || copied the row
    so far at every step."""
    merged: list[str] = []
    text = ""
    for part in parts:
        if isinstance(part, _Text):
            text += part
            continue
        if text:
            merged.append(_sql_literal(text))
            text = ""
        merged.append(part)
    if text:
        merged.append(_sql_literal(text))
    return "concat(" + ", ".join(merged) + ")"


def row_sql(section: str, index: int) -> str:
    """SQL of one event row's JSON text after its tag byte, for an events_event row."""
    parts: Parts = [_tag(section, index), _Text("{")]
    for n, (key, value) in enumerate(_promoted_fields(section)):
        parts += [_Text(f'{", " if n else ""}"{key}": '), *value]
    keys = _COMMON_KEYS + _SECTION_KEYS[section]
    if section == "llms":
        removed = _sql_array(keys)
    else:
        # event_row() sets "cost" outside LLM rows only when the column holds one; otherwise
        # the payload's own "cost", if any, stays.
        removed = (
            f"CASE WHEN cost IS NULL THEN {_sql_array(keys)} ELSE {_sql_array((*keys, 'cost'))} END"
        )
        cost = f"""', "cost": ' || {_money("cost")[0]}"""
        parts.append(f"CASE WHEN cost IS NULL THEN '' ELSE {cost} END")
    # The rest of the payload: its text without the opening brace, after a comma; only the
    # closing brace when nothing is left. In bytes (jsonb_send: a version byte, then the text):
    # substr() of a text counts UTF-8 characters from its start, ~10% of the export's time.
    rest = f"substring(jsonb_send(payload - {removed}) FROM 3)"
    return (
        f"textsend({_concat(parts)}) || "
        f"coalesce('\\x2c20'::bytea || nullif({rest}, '\\x7d'::bytea), '\\x7d'::bytea)"
    )


def _tag(section: str, index: int) -> str:
    """The byte before each row's text: which section it belongs to, or that Python must wrap
    its prompt or completion."""
    tag = chr(_SECTION_TAG + index)
    if section != "llms":
        return _sql_literal(tag)
    number_wrapped = (
        "jsonb_typeof(payload -> 'prompt') = 'number' "
        "OR jsonb_typeof(payload -> 'completion') = 'number'"
    )
    return f"CASE WHEN {number_wrapped} THEN '{chr(_WRAP_IN_PYTHON_TAG + index)}' ELSE '{tag}' END"


def export_query(sections: tuple[str, ...]) -> str:
    """One COPY for the whole session, ordered by section then time.

    The sort runs over narrow (ctid, section, time, id) rows and each row is then fetched by
    its ctid and built in that order (a nested loop keeps its outer order, so the outer ORDER
    BY needs no second sort): sorting the built rows instead spilled ~140 MB to disk, and one
    query per section read the session's 100k heap rows five times. events_event is
    partitioned by init_timestamp, so a ctid names a row only within its partition: the row's
    time picks the partition (pruned at run time, one TID lookup per row).
    """
    names = ", ".join(f"'{name}'" for name in sections)
    rows = " ".join(f"WHEN '{name}' THEN {row_sql(name, n)}" for n, name in enumerate(sections))
    return f"""COPY (
        SELECT CASE e.event_type {rows} END
        FROM (
            SELECT ctid AS row_tid, init_timestamp AS row_time, id AS row_id,
                array_position(ARRAY[{names}], event_type::text) AS row_section
            FROM events_event WHERE session_id = %s
            ORDER BY row_section, row_time, row_id OFFSET 0
        ) AS ordered
        CROSS JOIN LATERAL (
            SELECT * FROM events_event
            WHERE ctid = ordered.row_tid AND init_timestamp = ordered.row_time
        ) AS e
        ORDER BY row_section, row_time, row_id
    ) TO STDOUT (FORMAT binary)"""


def section_chunks(
    copy, wrap_numbers_in_python, rows_per_chunk: int = 500
) -> Iterator[tuple[int, bytes]]:
    """(section index, rows joined by commas) from export_query()'s COPY, in stream order.

    wrap_numbers_in_python(row JSON) returns the row JSON with its prompt and completion
    wrapped, for the rows tagged so.
    """
    rows: list = []
    section = None
    offset = _FILE_HEADER + _TUPLE_HEADER
    for data in copy:
        if len(data) <= offset:
            continue  # the trailer (after the file header if no rows): not a row
        tag = data[offset]
        row = data[offset + 1 :]
        if tag != section:
            if tag >= _WRAP_IN_PYTHON_TAG:
                tag -= _WRAP_IN_PYTHON_TAG - _SECTION_TAG
                row = wrap_numbers_in_python(row)
            if tag != section:
                if rows:
                    yield section - _SECTION_TAG, b",".join(rows)
                    rows = []
                section = tag
        rows.append(row)
        if len(rows) >= rows_per_chunk:
            yield section - _SECTION_TAG, b",".join(rows)
            rows = []
        offset = _TUPLE_HEADER
    if rows:
        yield section - _SECTION_TAG, b",".join(rows)
