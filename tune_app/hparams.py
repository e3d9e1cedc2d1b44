"""The one place that knows how a trial's searched values travel and are shown.

Ray hands a trial `{"hp": {"train.lr": 1e-3, "model.groups": 2}}`: only the searched values,
under dotted `section.field` keys (the rest of the TrialConfig is bound once per search), and
Ray's params.json stores exactly that. Tables, TensorBoard and summaries show the field name
alone ("lr"). Optuna categoricals hold scalars only, so list values travel as JSON strings.
"""

from __future__ import annotations

import json
import typing
from typing import Any, Optional

HP_KEY = "hp"


def wrap(hparams: dict[str, Any]) -> dict[str, Any]:
    """A trial's Ray config holding these searched values."""
    return {HP_KEY: hparams}


def unwrap(config: Any) -> Optional[dict[str, Any]]:
    """The searched values of a trial's Ray config (or params.json); None if it has none."""
    if isinstance(config, dict) and isinstance(config.get(HP_KEY), dict):
        return config[HP_KEY]
    return None


def field_name(key: str) -> str:
    """"train.lr" -> "lr": how a searched key is shown."""
    return key.split(".", 1)[-1]


def shown(hparams: dict[str, Any]) -> dict[str, Any]:
    """Searched values keyed by field name, for tables and TensorBoard."""
    return {field_name(k): v for k, v in hparams.items()}


def split_key(key: str) -> tuple[str, str]:
    """"train.lr" -> ("train", "lr")."""
    section, name = key.split(".", 1)
    return section, name


def ray_column(key: str) -> str:
    """The name Ray's reporter gives a searched key ("hp/train.lr")."""
    return f"{HP_KEY}/{key}"


def point_key(hparams: dict[str, Any]) -> str:
    """One string per point of a search space, whatever the order of its keys: what tells two
    runs of one configuration apart from two configurations."""
    return json.dumps(hparams, sort_keys=True)


def encode_choice(value: Any) -> Any:
    """Optuna categoricals hold only scalars, so list values travel as JSON strings."""
    return json.dumps(value) if isinstance(value, list) else value


def decode(hparams: dict[str, Any]) -> dict[str, Any]:
    """Undo `encode_choice` for the fields whose type admits a list."""
    from tune_app.config import SECTIONS

    out = {}
    for key, value in hparams.items():
        section, name = split_key(key)
        hint = typing.get_type_hints(SECTIONS[section])[name]
        if isinstance(value, str) and value.startswith("[") and "list" in str(hint):
            value = json.loads(value)
        out[key] = value
    return out
