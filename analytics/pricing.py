"""LLM call prices from the maintained `genai-prices` table, in Decimal.

Looking a model up in the table costs ~150 µs and the library's own arithmetic ~500 µs, so each
model's price is resolved once per process and flat prices are applied here, with the table's own
input, output, cache-read and cache-write prices; tiered prices (long-context surcharges) go back
to the library.

Token counts follow the table's convention (genai-prices `Usage`, whose `input_tokens` is the
ancestor unit of `cache_read_tokens` and `cache_write_tokens`): `prompt_tokens` counts every input
token, cache reads and writes included, as OpenAI's `prompt_tokens` does
(https://platform.openai.com/docs/guides/prompt-caching: "cached_tokens" is a part of
prompt_tokens). Anthropic's `input_tokens` leaves them out
(https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching: "input_tokens: Number of
input tokens which were not read from or used to create a cache"); genai-prices' own Anthropic
usage extractor adds them back, and so do ours (`usage_from_response`, the SDK's Anthropic
instrumentation).

A model id names its provider by its shape as well as by a LiteLLM-style `provider/` prefix:
Bedrock ids (`anthropic.claude-3-haiku-20240307-v1:0`, regional `us.` / `eu.` / `apac.` /
`global.` inference profiles, ARNs), Vertex ids (`claude-3-5-sonnet-v2@20241022`,
`projects/.../publishers/anthropic/models/...`), Azure's `gpt-35-turbo` names. The table knows
those models under its `aws`, `google` and `azure` providers (with their fallbacks to the model
makers), so the provider is resolved here and the model matched by the table itself.
"""

import logging
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from genai_prices import Usage, calc_price
from genai_prices.data_snapshot import get_snapshot

logger = logging.getLogger(__name__)

MTOK = Decimal(1_000_000)

# Bedrock: "<vendor>.<model>" with an optional cross-region inference profile prefix
# (https://docs.aws.amazon.com/bedrock/latest/userguide/models-supported.html,
# .../inference-profiles-support.html).
_BEDROCK = re.compile(
    r"^(?:(?:us|eu|apac|ap|au|ca|jp|global|us-gov)\.)?"
    r"(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|writer|qwen|openai|stability|"
    r"twelvelabs|luma)\.[a-z0-9]"
)
_BEDROCK_ARN = re.compile(r"^arn:aws[\w-]*:bedrock:[^:]*:[^:]*:[\w-]+/(.+)$")
# Vertex AI: a full resource name, or a publisher model with an "@version" tag
# (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/use-claude).
_VERTEX_PATH = re.compile(r"(?:^|/)publishers/[^/]+/models/([^/]+)$")
# Azure OpenAI names GPT-3.5 without the dot (https://learn.microsoft.com/azure/ai-services/openai/concepts/models).
_AZURE = re.compile(r"^gpt-35-turbo")


@dataclass(frozen=True)
class ModelPrice:
    input_mtok: Decimal | None
    output_mtok: Decimal | None
    cache_read_mtok: Decimal | None  # None: the table has none (cache reads cost the input price)
    cache_write_mtok: Decimal | None
    flat: bool  # every price above is a plain Decimal (not tiered)
    table_price: object  # the library's ModelPrice, for prices that are not flat


def lookups(model: str) -> list[tuple[str | None, str]]:
    """(provider id or None, model ref) to try in order: an ARN's or a resource path's model; the
    provider a Bedrock/Vertex/Azure id's shape names; a LiteLLM `provider/` prefix; the model
    alone (the table then matches the provider by the model, e.g. gpt-* -> openai)."""
    model = model.strip()
    found: list[tuple[str | None, str]] = []
    if arn := _BEDROCK_ARN.match(model):
        model = arn.group(1)
        found.append(("aws", model))
    if vertex := _VERTEX_PATH.search(model):
        found.append(("google", vertex.group(1)))
        return found
    provider, _, name = model.partition("/") if "/" in model else (None, "", model)
    provider = provider.lower() if provider else None
    lowered = name.lower()
    if _BEDROCK.match(lowered):
        found.append(("aws", name))
    elif "@" in name:
        found.append(("google", name))
    elif _AZURE.match(lowered):
        found.append(("azure", name))
    if provider:
        found.append((provider, name))
    found.append((None, name))
    return list(dict.fromkeys(found))


@lru_cache(maxsize=4096)
def model_price(model: str) -> ModelPrice | None:
    """The model's price, or None when the table does not know the model."""
    for provider, name in lookups(model):
        if not name:
            continue
        try:
            found = calc_price(
                Usage(input_tokens=0, output_tokens=0), model_ref=name, provider_id=provider
            )
        except LookupError:
            continue
        table = found.model_price
        prices = [
            table.input_mtok,
            table.output_mtok,
            table.cache_read_mtok,
            table.cache_write_mtok,
        ]
        flat = all(p is None or isinstance(p, Decimal) for p in prices)
        return ModelPrice(
            *(p if isinstance(p, Decimal) else None for p in prices), flat=flat, table_price=table
        )
    return None


def price_llm_call(
    model: str,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    *,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
) -> Decimal | None:
    """USD cost of one call, or None when it cannot be known (unknown model, no token counts,
    cache counts larger than the prompt they are part of). `prompt_tokens` includes the cache
    reads and writes (see the module docstring); a count given as None is taken as 0."""
    if not model or (prompt_tokens is None and completion_tokens is None):
        return None
    price = model_price(model)
    if price is None:
        return None
    prompt = prompt_tokens or 0
    completion = completion_tokens or 0
    cache_read = cache_read_tokens or 0
    cache_write = cache_write_tokens or 0
    if cache_read + cache_write > prompt:
        return None
    fresh = prompt - cache_read - cache_write
    # A count of zero needs no price: a model priced per output only still prices a call.
    needed = (
        (price.input_mtok, fresh),
        (price.output_mtok, completion),
        (price.cache_read_mtok or price.input_mtok, cache_read),
        (price.cache_write_mtok or price.input_mtok, cache_write),
    )
    if price.flat and all(p is not None or n == 0 for p, n in needed):
        cost = Decimal(0)
        for per_mtok, count in needed:
            if count:
                cost += per_mtok * count / MTOK
        return cost
    try:
        usage = Usage(
            input_tokens=prompt,
            output_tokens=completion,
            cache_read_tokens=cache_read or None,
            cache_write_tokens=cache_write or None,
        )
        return price.table_price.calc_price(usage)["total_price"]
    except Exception:  # a price shape the library cannot apply to these counts
        logger.warning("could not price %s for %s/%s tokens", model, prompt, completion)
        return None


# --- usage in a provider's response -------------------------------------------------------------


@dataclass(frozen=True)
class ResponseUsage:
    """Token counts read from a provider's response, in the table's convention."""

    prompt_tokens: int  # every input token, cache included
    completion_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    reported_prompt_tokens: int  # what the provider called its input count (Anthropic: excl. cache)


def usage_from_response(response: dict) -> ResponseUsage | None:
    """The usage of an OpenAI chat completion, OpenAI response or Anthropic message (the official
    SDK 0.3.26 sends the whole response as an LLM event's `returns`), read by genai-prices' own
    extractors for that provider (which hold each provider's convention); None for another shape
    or an incomplete usage."""
    usage = response.get("usage")
    if not isinstance(usage, dict):
        return None
    if response.get("type") == "message":
        provider, flavor, reported = "anthropic", "default", usage.get("input_tokens")
    elif response.get("object") == "response":
        provider, flavor, reported = "openai", "responses", usage.get("input_tokens")
    elif "prompt_tokens" in usage:
        provider, flavor, reported = "openai", "chat", usage.get("prompt_tokens")
    else:
        return None
    try:
        _, extracted = _provider(provider).extract_usage({"usage": usage}, api_flavor=flavor)
        values = {
            key: int(getattr(extracted, key) or 0)
            for key in (
                "input_tokens",
                "output_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
                "output_reasoning_tokens",
            )
        }
    except (ValueError, TypeError, LookupError):
        return None
    return ResponseUsage(
        prompt_tokens=values["input_tokens"],
        completion_tokens=values["output_tokens"],
        cache_read_tokens=values["cache_read_tokens"],
        cache_write_tokens=values["cache_write_tokens"],
        reasoning_tokens=values["output_reasoning_tokens"],
        reported_prompt_tokens=reported if isinstance(reported, int) else values["input_tokens"],
    )


@lru_cache(maxsize=8)
def _provider(provider_id: str):
    return get_snapshot().find_provider(None, provider_id, None)
