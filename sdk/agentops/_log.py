"""The SDK's logger: warnings reach the user even when the program configured no logging."""

import logging
import os

logger = logging.getLogger("agentops")


class _FallbackHandler(logging.StreamHandler):
    """Prints only while the root logger has no handler of its own, so an application that
    configures logging (or pytest's caplog) sees each message once, through its own handlers."""

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            super().emit(record)


def _setup() -> None:
    if any(isinstance(h, _FallbackHandler) for h in logger.handlers):
        return
    handler = _FallbackHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    level = os.environ.get("AGENTOPS_LOGGING_LEVEL", "INFO").upper()
    logger.setLevel(getattr(logging, level, logging.INFO))


_setup()
