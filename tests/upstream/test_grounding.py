"""Reading candidates and grounding from answers as Google and gateways send them."""

from __future__ import annotations

import base64
import json

from bot.upstream.extract import conclude, read_answer
from bot.upstream.grounding import MAX_SOURCES, MAX_TITLE
from tests.fakes.gptproto_images import make_image

PNG = base64.b64encode(make_image(7, (256, 256))).decode()
OTHER = base64.b64encode(make_image(8, (256, 256))).decode()


def image_part(data: str = PNG, **extra: object) -> dict[str, object]:
    return {"inlineData": {"mimeType": "image/png", "data": data}, **extra}


def answer(*candidates: dict[str, object]) -> dict[str, object]:
    return {"candidates": list(candidates)}


def candidate(*parts: dict[str, object], **extra: object) -> dict[str, object]:
    return {"content": {"role": "model", "parts": list(parts)}, "finishReason": "STOP", **extra}


def web(uri: str, title: object = "A page") -> dict[str, object]:
    return {"web": {"uri": uri, "title": title}}


def test_sources_are_deduplicated_bounded_and_only_http() -> None:
    chunks = [web("https://a.example/1"), web("https://a.example/1", "again")]
    chunks += [web("javascript:alert(1)"), web("ftp://files.example/x"), web("https://b .x/")]
    chunks += [web(f"https://c.example/{n}") for n in range(20)]
    payload = answer(candidate(image_part(), groundingMetadata={"groundingChunks": chunks}))

    sources = conclude(read_answer(payload)).sources

    assert len(sources) == MAX_SOURCES
    assert sources[0].uri == "https://a.example/1" and sources[0].title == "A page"
    assert all(source.uri.startswith("https://") and " " not in source.uri for source in sources)


def test_titles_are_bounded_and_missing_ones_named_by_host() -> None:
    chunks = [web("https://long.example/", "x" * 1000), web("https://host.example/p", None)]
    payload = answer(candidate(image_part(), grounding_metadata={"grounding_chunks": chunks}))

    long, bare = conclude(read_answer(payload)).sources

    assert len(long.title) == MAX_TITLE and long.title.endswith("…")
    assert bare.title == "host.example"


def test_older_grounding_attributions_and_the_search_entry_point() -> None:
    metadata = {
        "groundingAttributions": [web("http://old.example/")],
        "searchEntryPoint": {"renderedContent": "<div>ignored</div>"},
    }
    payload = answer(candidate(image_part(), groundingMetadata=metadata))

    assert [s.uri for s in conclude(read_answer(payload)).sources] == ["http://old.example/"]


def test_a_candidate_without_an_image_is_skipped_when_another_made_one() -> None:
    payload = answer(
        {"finishReason": "IMAGE_SAFETY", "index": 0},
        candidate({"text": "second"}, image_part(OTHER), index=1),
    )

    generation = conclude(read_answer(payload))

    assert [image.data for image in generation.images] == [base64.b64decode(OTHER)]
    assert generation.text == "second"
    assert generation.candidate_parts == ()  # one image: parts_json is its history


def test_signed_drafts_are_kept_verbatim_and_only_the_last_image_is_a_result() -> None:
    payload = answer(
        candidate(
            image_part(PNG, thoughtSignature="sig-1"),
            {"text": "Final.", "thoughtSignature": "sig-2"},
            image_part(OTHER, thoughtSignature="sig-3"),
        )
    )

    generation = conclude(read_answer(payload))

    [image] = generation.images
    assert image.data == base64.b64decode(OTHER)
    draft, words, final = json.loads(generation.parts_json)
    assert draft == image_part(PNG, thoughtSignature="sig-1")  # bytes and signature as sent
    assert words["thoughtSignature"] == "sig-2"
    assert final["inlineData"] == {"mimeType": "image/png", "sha256": image.sha256}
    assert final["thoughtSignature"] == "sig-3"


def test_unsigned_images_in_one_candidate_are_all_results() -> None:
    # 2.5 Flash Image interleaves several pictures with text; nothing marks drafts there.
    payload = answer(candidate(image_part(PNG), {"text": "and"}, image_part(OTHER)))

    assert len(conclude(read_answer(payload)).images) == 2
