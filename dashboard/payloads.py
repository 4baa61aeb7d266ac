"""Turn stored event payloads into what the drill-down page shows: chat messages, readable JSON,
tracebacks. Everything returned is plain text; the templates escape it (agent payloads are
untrusted and may hold HTML or <script>)."""

from dataclasses import dataclass

import orjson

# Long payloads are cut on the page; the JSON export carries them whole.
MAX_SHOWN_CHARS = 20_000


@dataclass(frozen=True)
class Message:
    role: str
    text: str
    extra: str = ""  # tool calls, function calls, non-text parts: as readable JSON


def clip(text: str, limit: int = MAX_SHOWN_CHARS) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit], True


def last_line(text: str, limit: int = 200) -> str:
    """A traceback's summary: its last non-empty line (the exception), at most `limit` chars;
    a one-line text is itself."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip()[:limit] if lines else ""


def pretty_json(value) -> str:
    """Indented JSON for params/returns; strings that hold JSON are shown as that JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "["):
            try:
                value = orjson.loads(stripped)
            except orjson.JSONDecodeError:
                return value
        else:
            return value
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return str(value)


def _content_text(content) -> tuple[str, str]:
    """(text, extra) of a message's content: a string, or OpenAI/Anthropic content parts."""
    if content is None:
        return "", ""
    if isinstance(content, str):
        return content, ""
    if isinstance(content, list):
        texts, others = [], []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                others.append(part)
        return "\n\n".join(texts), pretty_json(others) if others else ""
    return pretty_json(content), ""


def _message(value, default_role: str) -> Message:
    if isinstance(value, dict):
        role = str(value.get("role") or default_role)
        text, extra = _content_text(value.get("content"))
        rest = {
            k: v
            for k, v in value.items()
            if k in ("tool_calls", "function_call", "tool_call_id", "name") and v
        }
        if rest:
            extra = "\n".join(filter(None, [extra, pretty_json(rest)]))
        return Message(role=role, text=text, extra=extra)
    if isinstance(value, str):
        return Message(role=default_role, text=value)
    return Message(role=default_role, text=pretty_json(value))


def messages(value, *, default_role: str) -> list[Message]:
    """Every accepted prompt/completion shape as a list of messages:
    chatml list, plain string, {"type": "chatml", "messages": [...]},
    {"type": "string", "string": ...}, {"messages": [...]}, or one message dict."""
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        if value.get("type") == "string" and "string" in value:
            return [_message(value.get("string"), default_role)]
        if isinstance(value.get("messages"), list):
            return [_message(m, default_role) for m in value["messages"]]
        if "choices" in value and isinstance(value["choices"], list):
            # A raw OpenAI response object stored as the completion.
            return [
                _message(c.get("message", c) if isinstance(c, dict) else c, default_role)
                for c in value["choices"]
            ]
        return [_message(value, default_role)]
    if isinstance(value, list):
        return [_message(m, default_role) for m in value]
    return [_message(value, default_role)]


# --- Readable content: Markdown, folds, repeated system prompts ------------------------------

# Messages longer than this (characters or lines) start folded behind "show more".
FOLD_CHARS = 600
FOLD_LINES = 8
# Only what Markdown produces, and only safe attributes: the sanitiser drops everything else.
ALLOWED_TAGS = {
    "p", "br", "hr", "pre", "code", "em", "strong", "del", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "ol": {"start"}}

_markdown = None


def _parser():
    global _markdown
    if _markdown is None:
        from markdown_it import MarkdownIt

        # html=False: raw HTML in a prompt is shown as text, never passed through; breaks=True
        # keeps the line breaks of plain chat text.
        _markdown = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable("table")
        _markdown.enable("strikethrough")
    return _markdown


def render_markdown(text: str) -> str:
    """Agent text (prompt, completion) as HTML: Markdown rendered by markdown-it-py, then
    cleaned by nh3 (the ammonia allow-list sanitiser) with ALLOWED_TAGS/ALLOWED_ATTRIBUTES and
    only http(s)/mailto links. The result is safe to mark safe; code is in <pre><code>."""
    import nh3

    html = _parser().render(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def is_long(text: str) -> bool:
    """Whether a message starts folded: over FOLD_CHARS characters or FOLD_LINES lines."""
    return len(text) > FOLD_CHARS or text.count("\n") >= FOLD_LINES


def message_views(msgs: list[Message], *, seen: dict[str, int], number: int | None) -> list[dict]:
    """The messages of one LLM call as the page shows them: {"role", "html" (sanitised),
    "long", "extra", "same_as"}. `seen` maps system prompts already shown to the number of the
    call that showed them first; a repeat gets `same_as` and is collapsed (and `seen` is
    updated in place with this call's new system prompts)."""
    views = []
    for m in msgs:
        text, cut = clip(m.text)
        view = {"role": m.role, "extra": m.extra, "cut": cut, "same_as": None}
        if m.role == "system" and text and number is not None:
            first = seen.setdefault(text, number)
            if first != number:
                view["same_as"] = first
        view["html"] = render_markdown(text) if text else ""
        view["long"] = is_long(text)
        views.append(view)
    return views


# --- Host environment and screenshots ---------------------------------------------------------


def _pick(env: dict, *paths: tuple[str, ...]):
    for path in paths:
        node = env
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node not in (None, "", {}, []):
            return node
    return None


def host_summary(env) -> list[tuple[str, str]]:
    """(label, text) pairs for OS, Python, host, CPU and memory from a host_env dict, in the
    shape the AgentOps SDKs send (agentops 0.3 helpers.get_host_env: "OS", "SDK", "CPU",
    "RAM" sections) or OTLP resource attributes (os.type, process.runtime.*, host.name);
    what is missing is left out."""
    if not isinstance(env, dict):
        return []
    found = [
        ("OS", _pick(env, ("OS", "OS"), ("os.type",), ("os",))),
        ("OS release", _pick(env, ("OS", "OS Release"), ("os.version",), ("os.description",))),
        ("Python", _pick(env, ("SDK", "Python Version"), ("process.runtime.version",),
                         ("python",))),
        ("Host", _pick(env, ("OS", "Hostname"), ("host.name",), ("hostname",))),
        ("CPU", _pick(env, ("CPU", "Total cores"), ("host.cpu.count",))),
        ("CPU usage", _pick(env, ("CPU", "CPU Usage"))),
        ("Memory", _pick(env, ("RAM", "Total"), ("host.memory",))),
        ("Memory available", _pick(env, ("RAM", "Available"))),
    ]  # fmt: skip
    return [(label, str(value)[:200]) for label, value in found if value is not None]


IMAGE_DATA_PREFIXES = tuple(
    f"data:image/{kind};base64," for kind in ("png", "jpeg", "jpg", "gif", "webp")
)


def image_url(value) -> str | None:
    """A screenshot reference that may become an <img src>: an http(s) URL or a base64 data
    URL of a raster image (never SVG, which can carry script; never javascript:)."""
    if not isinstance(value, str):
        return None
    from urllib.parse import urlsplit

    if value.lower().startswith(IMAGE_DATA_PREFIXES):
        return value
    parts = urlsplit(value)
    return value if parts.scheme in ("http", "https") and parts.netloc else None
