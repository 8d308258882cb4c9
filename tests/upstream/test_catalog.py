"""The model table: today's models, shut-down ids, family defaults, the operator's file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.config import load_settings, model_table
from bot.errors import ConfigError, UnknownModel, UnsupportedOption
from bot.upstream import BUILTIN, MODELS, WIDE_RATIOS, GenerationRequest, check_request


def test_the_table_holds_todays_models_with_their_own_limits() -> None:
    flash, pro, lite = (
        MODELS["gemini-3.1-flash-image"],
        MODELS["gemini-3-pro-image"],
        MODELS["gemini-3.1-flash-lite-image"],
    )
    assert (flash.max_images, flash.image_sizes, flash.ratios) == (
        14,
        ("512", "1K", "2K", "4K"),
        WIDE_RATIOS,
    )
    assert (pro.image_sizes, pro.grounding, pro.price("4K"), pro.price("2K")) == (
        ("1K", "2K", "4K"),
        True,
        0.24,
        0.134,
    )
    assert (lite.image_sizes, lite.grounding, lite.default_size) == ((), False, "1K")
    assert [flash.price(size) for size in ("512", "1K", "2K", "4K")] == [0.045, 0.067, 0.101, 0.151]
    assert all(caps.needs_signatures for caps in (flash, pro, lite))
    assert MODELS["gemini-2.5-flash-image"].max_candidates > 1 == flash.max_candidates


def test_shut_down_ids_still_answer_where_routed_and_name_their_successor() -> None:
    old = BUILTIN.get("gemini-2.5-flash-image")
    assert (old.retired_on, old.successor) == (date(2026, 10, 2), "gemini-3.1-flash-image")
    assert BUILTIN.successor("gemini-3-pro-image-preview") == "gemini-3-pro-image"
    assert "gemini-2.5-flash-image" not in BUILTIN.current()


def test_ids_retired_everywhere_are_refused_naming_the_successor() -> None:
    with pytest.raises(UnknownModel) as refused:
        BUILTIN.get("gemini-2.0-flash-preview-image-generation")
    assert "retired on 2025-10-31; use 'gemini-3.1-flash-image'" in refused.value.user_message


@pytest.mark.parametrize(
    ("model", "family", "images"),
    [
        ("gemini-3.1-flash-image-002", "gemini-3.1-flash-image", 14),
        ("gemini-3-pro-image-exp", "gemini-3-pro-image", 14),
        ("gemini-3.5-flash-image", "gemini-3", 14),
        ("gemini-3.1-flash-lite-image-preview", "gemini-3.1-flash-lite-image", 14),
        ("gemini-2.5-flash-image-exp", "gemini-2.5-flash-image", 3),
        ("someone-elses-model", "gemini-2.5-flash-image", 3),
    ],
)
def test_an_unlisted_id_takes_its_familys_limits(model: str, family: str, images: int) -> None:
    caps = BUILTIN.get(model)
    assert (caps.name, caps.family, caps.max_images) == (model, family, images)
    assert caps.needs_signatures is model.startswith("gemini-3")
    assert caps.retired_on is None


def test_an_operator_file_adds_and_overrides_models(tmp_path: Path) -> None:
    rows = tmp_path / "models.toml"
    rows.write_text(
        """
[models."house-image-1"]
based_on = "gemini-3.1-flash-image"
max_images = 6
sizes = ["1K", "2K"]
prices = { "1K" = 0.05, "2K" = 0.08 }
grounding = false

[models."gemini-3-pro-image"]
prices = { "4K" = 0.3 }

[retired]
"house-image-0" = "house-image-1"
""",
        encoding="utf-8",
    )
    table = model_table(load_settings(models_file=str(rows), image_prices="house-image-1:2K=0.09"))
    house = table.get("house-image-1")
    assert (house.max_images, house.image_sizes, house.grounding) == (6, ("1K", "2K"), False)
    assert (house.price("1K"), house.price("2K")) == (0.05, 0.09)
    assert house.needs_signatures and house.ratios == WIDE_RATIOS
    assert table.get("gemini-3-pro-image").price("4K") == 0.3
    assert table.get("gemini-3-pro-image").price("1K") == 0.134
    with pytest.raises(UnknownModel, match="house-image-1"):
        table.get("house-image-0")
    with pytest.raises(UnsupportedOption, match="cannot make 4K"):
        check_request(
            GenerationRequest(model="house-image-1", contents=(), image_size="4K"), models=table
        )


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[models."m"]\nsizes = ["8K"]', "unknown sizes"),
        ('[models."m"]\ncolour = "red"', "unknown field 'colour'"),
        ('[models."m"]\nmax_images = 0', "max_images"),
        ('[models."m"]\nprices = { "1K" = -1 }', "negative"),
        ("[extra]\nx = 1", "unknown sections"),
        ("not toml at all [", "cannot be read"),
    ],
)
def test_a_bad_operator_file_is_refused_naming_the_mistake(
    tmp_path: Path, text: str, said: str
) -> None:
    rows = tmp_path / "models.toml"
    rows.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=said):
        model_table(load_settings(models_file=str(rows)))


def test_json_files_are_read_too(tmp_path: Path) -> None:
    rows = tmp_path / "models.json"
    rows.write_text('{"models": {"m-1": {"based_on": "gemini-3-pro-image"}}}', encoding="utf-8")
    assert model_table(load_settings(models_file=str(rows))).get("m-1").family == (
        "gemini-3-pro-image"
    )


@pytest.mark.parametrize("value", ["x", "m=", "m=-1", "=3"])
def test_bad_prices_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="IMAGE_PRICES"):
        load_settings(image_prices=value)
