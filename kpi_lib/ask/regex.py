"""``re``, with room for all of Ask's patterns.

Python keeps the last 512 compiled patterns, and the rewrites and the parser use more than that on
every question, so each question compiled hundreds of them again: parsing the 4,895 unseen questions
took 3.5 ms a question on average and 100 ms at worst, and 2.3 ms and 20-26 ms with them kept
(measured 2026-12-07). The modules of this package import this in place of ``re``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from re import IGNORECASE, Match, Pattern, escape  # noqa: F401 - the rest of re's surface used here

#: more than every pattern Ask uses, and bounded: a pattern built from the data's own names (a
#: lexicon's alternation) changes when new names arrive
_PATTERNS = 4096


@lru_cache(maxsize=_PATTERNS)
def compile(pattern: str | Pattern, flags: int = 0) -> Pattern:  # noqa: A001 - re's own name
    return re.compile(pattern, flags)


def sub(pattern, repl, string: str, count: int = 0, flags: int = 0) -> str:
    return compile(pattern, flags).sub(repl, string, count)


def search(pattern, string: str, flags: int = 0) -> Match | None:
    return compile(pattern, flags).search(string)


def match(pattern, string: str, flags: int = 0) -> Match | None:
    return compile(pattern, flags).match(string)


def fullmatch(pattern, string: str, flags: int = 0) -> Match | None:
    return compile(pattern, flags).fullmatch(string)


def findall(pattern, string: str, flags: int = 0) -> list:
    return compile(pattern, flags).findall(string)


def finditer(pattern, string: str, flags: int = 0):
    return compile(pattern, flags).finditer(string)


def split(pattern, string: str, maxsplit: int = 0, flags: int = 0) -> list:
    return compile(pattern, flags).split(string, maxsplit)
