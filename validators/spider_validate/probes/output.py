"""What every parser of a tool's output shares: output it cannot read becomes one failure that quotes it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
EXCERPT = 300  # characters of an unreadable output a failure quotes (its end, where the summaries are)


class UnreadableOutput(ValueError):
    """A tool printed what its parser cannot read (a hostile or broken pod): that action fails, quoting the text."""

    def __init__(self, tool: str, text: str, why: Exception) -> None:
        quoted = text if len(text) <= EXCERPT else "..." + text[-EXCERPT:]
        super().__init__(f"could not read the output of {tool} ({type(why).__name__}: {why}): {quoted!r}")


def reads(tool: str) -> Callable[[Callable[[str], T]], Callable[[str], T]]:
    """Decorate the parser of `tool`'s output: whatever the text makes it raise (a number such as `1.2.3`, a
    missing key, a short row) becomes UnreadableOutput with that text, which the runner reports as the action's
    failure. The parser's own errors (a tool that ran and says it failed) pass unchanged."""

    def wrap(parse: Callable[[str], T]) -> Callable[[str], T]:
        @functools.wraps(parse)
        def parsed(output: str) -> T:
            try:
                return parse(output)
            except (ValueError, LookupError, TypeError, AttributeError) as exc:
                if isinstance(exc, UnreadableOutput):
                    raise
                raise UnreadableOutput(tool, output, exc) from exc

        return parsed

    return wrap
