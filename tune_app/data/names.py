"""Readable class names: what reports, the confusion matrix and metrics.json show.

Sources label classes with ids meant for machines: Tiny ImageNet with WordNet ids
(`n02124075`), CUB with numbered folder names (`001.Black_footed_Albatross`). A preset may
name a function here that turns its ids into short names (`Egyptian cat`, `Black footed
Albatross`); the ids themselves stay in the data (DataBundle.class_ids, metrics.json
`class_ids`), so nothing is lost. Names are derived at load time from the cached ids, so
a decoded-data cache entry never goes stale when a name changes.

This module is the one place that reads the shipped WordNet table
(`tiny_imagenet_words.txt`: `wnid<TAB>synonym, synonym, ...`, one class a line, taken
from Tiny ImageNet's own words.txt).
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Callable, Optional, Sequence

WORDS_FILE = "tiny_imagenet_words.txt"
# CUB's class folders: "001.Black_footed_Albatross".
_NUMBERED = re.compile(r"^\d+\.")

Renamer = Callable[[Sequence[str]], list[str]]


@lru_cache(maxsize=1)
def wordnet_words() -> dict[str, str]:
    """wnid -> its first WordNet synonym, from the table shipped as package data.

    The first synonym only: the full lists ("tabby, tabby cat") are too long for the axis of
    a confusion matrix, and the first ones of Tiny ImageNet's 200 classes are all distinct.
    """
    text = resources.files(__package__).joinpath(WORDS_FILE).read_text(encoding="utf-8")
    words = {}
    for line in text.splitlines():
        wnid, _, synonyms = line.partition("\t")
        if wnid and synonyms:
            words[wnid.strip()] = synonyms.split(",")[0].strip()
    return words


def wordnet_names(ids: Sequence[str]) -> list[str]:
    """Tiny ImageNet: wnid -> first synonym; an id not in the table (another source) is kept."""
    words = wordnet_words()
    return [words.get(i, i) for i in ids]


def folder_names(ids: Sequence[str]) -> list[str]:
    """CUB: "001.Black_footed_Albatross" -> "Black footed Albatross"."""
    return [_NUMBERED.sub("", i).replace("_", " ").strip() or i for i in ids]


def display_names(ids: Sequence[str], rename: Optional[Renamer]) -> list[str]:
    """The names to show for classes `ids`: `rename`d if the preset has a renamer, unique always.

    Names key metrics.json's per-class accuracies, so two classes must never share one: a
    name that `rename` gives to several classes carries its id, "name (id)".
    """
    ids = [str(i) for i in ids]
    names = rename(ids) if rename is not None else list(ids)
    if len(names) != len(ids):
        raise ValueError(f"renaming {len(ids)} classes gave {len(names)} names")
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    return [f"{name} ({i})" if seen[name] > 1 and name != i else name for name, i in zip(names, ids)]
