"""LLM call prices from the maintained `genai-prices` table, in Decimal.

Looking a model up in the table costs ~150 µs, so each model's price is resolved once per process
and the arithmetic is done here; tiered prices (long-context surcharges) go back to the library.
"""

import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from genai_prices import Usage, calc_price

logger = logging.getLogger(__name__)

MTOK = Decimal(1_000_000)


@dataclass(frozen=True)
class ModelPrice:
    input_mtok: Decimal | None
    output_mtok: Decimal | None
    table_price: object  # the library's ModelPrice, for prices that are not flat


def _split_provider(model: str) -> tuple[str | None, str]:
    """'openai/gpt-4o' (LiteLLM's style) -> ('openai', 'gpt-4o')."""
    if "/" in model:
        provider, _, name = model.partition("/")
        return provider.lower() or None, name
    return None, model


@lru_cache(maxsize=4096)
def model_price(model: str) -> ModelPrice | None:
    """The model's price, or None when the table does not know the model."""
    provider, name = _split_provider(model.strip())
    if not name:
        return None
    try:
        found = calc_price(
            Usage(input_tokens=0, output_tokens=0), model_ref=name, provider_id=provider
        )
    except LookupError:
        if provider is None:
            return None
        try:
            found = calc_price(Usage(input_tokens=0, output_tokens=0), model_ref=name)
        except LookupError:
            return None
    table = found.model_price
    flat_in = table.input_mtok if isinstance(table.input_mtok, Decimal) else None
    flat_out = table.output_mtok if isinstance(table.output_mtok, Decimal) else None
    return ModelPrice(input_mtok=flat_in, output_mtok=flat_out, table_price=table)


def price_llm_call(
    model: str, prompt_tokens: int | None, completion_tokens: int | None
) -> Decimal | None:
    """USD cost of one call, or None when it cannot be known (unknown model, no token counts)."""
    if not model or (prompt_tokens is None and completion_tokens is None):
        return None
    price = model_price(model)
    if price is None:
        return None
    prompt_tokens = prompt_tokens or 0
    completion_tokens = completion_tokens or 0
    flat = (price.input_mtok is not None or prompt_tokens == 0) and (
        price.output_mtok is not None or completion_tokens == 0
    )
    if flat:
        cost = Decimal(0)
        if prompt_tokens:
            cost += price.input_mtok * prompt_tokens / MTOK
        if completion_tokens:
            cost += price.output_mtok * completion_tokens / MTOK
        return cost
    try:
        usage = Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens)
        return price.table_price.calc_price(usage)["total_price"]
    except Exception:  # a price shape the library cannot apply to these counts
        logger.warning(
            "could not price %s for %s/%s tokens", model, prompt_tokens, completion_tokens
        )
        return None
