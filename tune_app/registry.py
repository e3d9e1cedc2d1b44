"""The one registry idiom: name -> entry, filled by a decorator where each entry is defined.

Models, datasets, searchers and schedulers are all looked up by the name a spec gives, so an
unknown name is caught at start-up with a did-you-mean, and adding one is one decorated
definition (plus its config Literal and README row).
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar


T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind  # "model", shown in errors
        self.key = key  # the spec key that names an entry, e.g. "model.name"
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: `@MODELS.register("stage_cnn")` above the entry's definition."""

        def add(entry: T) -> T:
            self.add(name, entry)
            return entry

        return add

    def add(self, name: str, entry: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = entry

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)
