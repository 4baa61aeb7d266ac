"""Small readers shared by the providers: attribute-or-key access and the chatml shapes."""

from __future__ import annotations

import json
from typing import Any


def get(obj: Any, name: str, default: Any = None) -> Any:
    """obj.name for the libraries' response objects, obj[name] for dicts."""
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def messages_of(value: Any) -> list | None:
    """A shallow copy of the messages list; anything else (a generator the library has yet to
    consume) is left alone rather than used up here."""
    if isinstance(value, (list, tuple)):
        return list(value)
    return None


def tool_call(call_id: Any, name: Any, arguments: Any) -> dict:
    """A requested tool call in OpenAI's shape, whichever provider asked for it."""
    if not isinstance(arguments, str):
        try:
            arguments = json.dumps(arguments)
        except (TypeError, ValueError):
            arguments = str(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def assistant(content: str | None, tool_calls: list | None = None) -> dict:
    message: dict = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def text_of(content: Any) -> Any:
    """A message's content as text when it is a list of text parts; otherwise as it is."""
    if isinstance(content, list):
        texts = []
        for part in content:
            text = get(part, "text")
            if not isinstance(text, str):
                return content  # images, files ...: keep the parts whole
            texts.append(text)
        return "".join(texts)
    return content


# --- token usage, in the server's convention ---------------------------------------------------
# prompt_tokens counts every input token, cache reads and writes included, and cache_read_tokens /
# cache_write_tokens say which part came from / went to the prompt cache (the convention of
# OpenAI's usage and of the genai-prices table the server prices with). reasoning_tokens is the
# part of completion_tokens spent reasoning.


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def openai_chat_usage(usage: Any) -> dict:
    """OpenAI chat completions (and LiteLLM, which follows their shape): prompt_tokens already
    includes prompt_tokens_details.cached_tokens
    (https://platform.openai.com/docs/guides/prompt-caching); LiteLLM adds Anthropic's cache
    writes as cache_creation_input_tokens (https://docs.litellm.ai/docs/completion/prompt_caching)."""
    return {
        "prompt_tokens": get(usage, "prompt_tokens"),
        "completion_tokens": get(usage, "completion_tokens"),
        "cache_read_tokens": _int(get(get(usage, "prompt_tokens_details"), "cached_tokens")),
        "cache_write_tokens": _int(get(usage, "cache_creation_input_tokens")),
        "reasoning_tokens": _int(get(get(usage, "completion_tokens_details"), "reasoning_tokens")),
    }


def openai_responses_usage(usage: Any) -> dict:
    """OpenAI responses: input_tokens includes input_tokens_details.cached_tokens."""
    return {
        "prompt_tokens": get(usage, "input_tokens"),
        "completion_tokens": get(usage, "output_tokens"),
        "cache_read_tokens": _int(get(get(usage, "input_tokens_details"), "cached_tokens")),
        "reasoning_tokens": _int(get(get(usage, "output_tokens_details"), "reasoning_tokens")),
    }


def anthropic_usage(
    input_tokens: Any, output_tokens: Any, cache_read: Any, cache_write: Any
) -> dict:
    """Anthropic: input_tokens leaves out the tokens read from and written to the cache
    (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching, "input_tokens: Number of
    input tokens which were not read from or used to create a cache"), so they are added back."""
    cache_read, cache_write = _int(cache_read), _int(cache_write)
    prompt = _int(input_tokens)
    if prompt is not None:
        prompt += (cache_read or 0) + (cache_write or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output_tokens,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
    }
