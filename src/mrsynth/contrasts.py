"""The one table of MR contrast names and their aliases, used everywhere in mrsynth."""

from __future__ import annotations

import re

#: Canonical contrast names, in a stable order.
CANONICAL_CONTRASTS: tuple[str, ...] = ("t1", "t1c", "t2", "pd", "flair", "dwi", "adc")

#: Alias (lower case) -> canonical name. File-name conventions of BraTS 2015-2023,
#: ISLES 2015/2022, BraTS-Toolkit and plain names all map through this table.
CONTRAST_ALIASES: dict[str, str] = {
    "t1": "t1", "t1n": "t1", "t1w": "t1", "t1native": "t1",
    "t1c": "t1c", "t1ce": "t1c", "t1gd": "t1c", "t1post": "t1c", "t1wce": "t1c",
    "t1contrast": "t1c",
    "t2": "t2", "t2w": "t2",
    "pd": "pd", "pdw": "pd",
    "flair": "flair", "t2f": "flair", "fla": "flair", "t2flair": "flair",
    "dwi": "dwi", "dw": "dwi", "trace": "dwi",
    "adc": "adc",
}


def canonical_contrast(name: str) -> str:
    """Return the canonical contrast for ``name`` (``"T1ce"`` -> ``"t1c"``).

    Raises ``ValueError`` naming the known contrasts when ``name`` is not one of them.
    """
    key = re.sub(r"[^a-z0-9]", "", name.strip().lower())
    try:
        return CONTRAST_ALIASES[key]
    except KeyError:
        known = ", ".join(CANONICAL_CONTRASTS)
        raise ValueError(f"unknown contrast {name!r}; known contrasts: {known}") from None


def parse_contrast_list(text: str) -> tuple[str, ...]:
    """Parse ``"t1,T2,dwi"`` into canonical names, rejecting empty lists and repeats."""
    names = tuple(canonical_contrast(part) for part in text.split(",") if part.strip())
    if not names:
        raise ValueError("no contrast given")
    if len(set(names)) != len(names):
        raise ValueError(f"a contrast is listed twice in {text!r}")
    return names
