"""Token usage per run and what it cost. An unknown price is `None` ("unknown"), never zero.

Price table file (YAML or JSON), USD per million tokens; `cached_input` defaults to `input`; the
`batch_*` prices are what a batch run pays (`--batch`; a model without them costs "unknown" there):

    gpt-4o-mini: {input: 0.15, cached_input: 0.075, output: 0.60, batch_input: 0.075, batch_output: 0.30}
    qwen2.5-coder-1.5b-instruct: {input: 0, output: 0}   # local: free, but say so explicitly
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from personasim.errors import InputError
from personasim.records.usage import Usage
from personasim.yaml_errors import load_yaml


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    batch_input: float | None = Field(default=None, ge=0)
    batch_cached_input: float | None = Field(default=None, ge=0)
    batch_output: float | None = Field(default=None, ge=0)

    def batch(self) -> ModelPrice | None:
        """The prices of a batch call; None when the table gives none."""
        if self.batch_input is None or self.batch_output is None:
            return None
        return ModelPrice(input=self.batch_input, output=self.batch_output, cached_input=self.batch_cached_input)

    def cost(self, usage: Usage) -> float:
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        dollars = (
            (usage.prompt_tokens - cached) * self.input + cached * cached_price + usage.completion_tokens * self.output
        )
        return dollars / 1_000_000


class PriceTable(BaseModel):
    """Prices per model name. A dated name (`gpt-4o-mini-2024-07-18`) falls back to the longest
    listed prefix followed by `-` (`gpt-4o-mini`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prices: dict[str, ModelPrice] = Field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | Path) -> PriceTable:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(path, None, f"cannot read price table: {exc.strerror or exc}") from exc
        data = load_yaml(text, path, "invalid YAML in price table") or {}
        if isinstance(data, dict) and set(data) == {"prices"}:
            data = data["prices"]
        return cls.from_mapping(data, source=path)

    @classmethod
    def from_mapping(cls, data: Any, source: str | Path | None = None) -> PriceTable:
        try:
            return cls.model_validate({"prices": data})
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"][1:]) or "prices"
            raise InputError(source, None, f"invalid price table at {where}: {first['msg']}") from exc

    def batch_prices(self) -> PriceTable:
        """The table a batch run is costed at: each model's batch prices (models without them left out)."""
        batch = {name: price.batch() for name, price in self.prices.items()}
        return PriceTable(prices={name: price for name, price in batch.items() if price is not None})

    def price_for(self, model: str) -> ModelPrice | None:
        if model in self.prices:
            return self.prices[model]
        prefixes = [name for name in self.prices if model.startswith(name + "-")]
        return self.prices[max(prefixes, key=len)] if prefixes else None

    def cost(self, model: str, usage: Usage) -> float | None:
        """USD for `usage` on `model`, or None when the model has no price."""
        price = self.price_for(model)
        return None if price is None else price.cost(usage)


def format_cost(dollars: float | None) -> str:
    return "unknown" if dollars is None else f"${dollars:.4f}"
