"""Slack file downloads: the token goes only to Slack's hosts, login pages become a clear error."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.files import SlackFiles
from bot.errors import BotError, ConfigError, ImageTooLarge, InputError, NotAnImage
from tests.fakes.slack import FakeSlack

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 10


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as running:
        yield running


@pytest.fixture
async def foreign() -> AsyncIterator[FakeSlack]:
    """Another server on the loopback, reached by a host name that is not Slack's."""
    async with FakeSlack() as running:
        yield running


def _files(fake: FakeSlack, *, token: str | None = None, max_mb: float = 1.0) -> SlackFiles:
    token = token or fake.bot_token
    web = AsyncWebClient(token=token, base_url=fake.api_url)
    return SlackFiles(token=token, api_url=fake.api_url, web=web, max_mb=max_mb)


@pytest.fixture
async def files(fake: FakeSlack) -> AsyncIterator[SlackFiles]:
    downloader = _files(fake)
    await downloader.open()
    yield downloader
    await downloader.close()


async def test_downloads_with_the_bot_token(fake: FakeSlack, files: SlackFiles) -> None:
    attachment = await files.fetch(fake.add_file("cat.png", PNG))
    assert (attachment.data, attachment.name) == (PNG, "cat.png")
    [download] = fake.downloads
    assert download.token == fake.bot_token


async def test_a_file_stub_is_completed_with_files_info(fake: FakeSlack, files: SlackFiles) -> None:
    info = fake.add_file("dog.png", PNG)
    attachment = await files.fetch({"id": info["id"], "file_access": "check_file_info"})
    assert attachment.data == PNG
    [call] = fake.called("files.info")
    assert call.params["file"] == info["id"]


async def test_a_foreign_host_never_gets_the_token(
    fake: FakeSlack, foreign: FakeSlack, files: SlackFiles
) -> None:
    elsewhere = foreign.add_file("x.png", PNG)["url_private"].replace("127.0.0.1", "localhost")
    with pytest.raises(InputError, match=r"'x\.png' points elsewhere"):
        await files.fetch({"name": "x.png", "url_private": elsewhere})
    assert foreign.downloads == []


async def test_a_redirect_to_a_foreign_host_is_not_followed(
    fake: FakeSlack, foreign: FakeSlack, files: SlackFiles
) -> None:
    target = foreign.add_file("y.png", PNG)["url_private"].replace("127.0.0.1", "localhost")
    url = fake.redirect("/T0001-F9/y.png", target)
    with pytest.raises(InputError, match="points elsewhere"):
        await files.fetch({"name": "y.png", "url_private": url})
    assert [d.params["path"] for d in fake.downloads] == ["/files-pri/T0001-F9/y.png"]
    assert foreign.downloads == []


async def test_a_redirect_within_slack_is_followed(fake: FakeSlack, files: SlackFiles) -> None:
    real = fake.add_file("z.png", PNG)["url_private"]
    url = fake.redirect("/T0001-F8/z.png", real)
    assert (await files.fetch({"name": "z.png", "url_private": url})).data == PNG
    assert all(d.token == fake.bot_token for d in fake.downloads)


async def test_the_login_page_means_a_missing_files_read_scope(
    fake: FakeSlack, files: SlackFiles
) -> None:
    fake.scopes.discard("files:read")
    with pytest.raises(ConfigError, match="files:read") as caught:
        await files.fetch(fake.add_file("cat.png", PNG))
    assert "cat.png" in caught.value.user_message
    assert fake.downloads[0].token == fake.bot_token


async def test_oversize_files_are_refused(fake: FakeSlack) -> None:
    downloader = _files(fake, max_mb=0.0001)
    await downloader.open()
    try:
        info = fake.add_file("big.png", PNG * 10)
        with pytest.raises(ImageTooLarge, match=r"big\.png"):
            await downloader.fetch(info)
        with pytest.raises(ImageTooLarge, match=r"0\.0001 MB"):
            await downloader.fetch({**info, "size": None})
    finally:
        await downloader.close()


def test_only_files_that_could_be_images_are_counted() -> None:
    files = [
        {"name": "a.png", "mimetype": "image/png"},
        {"name": "b.heic", "mimetype": "image/heic"},
        {"id": "F3", "file_access": "check_file_info"},  # a stub: only its bytes can tell
        {"name": "c.bin", "mimetype": "application/octet-stream"},
        {"name": "d.pdf", "mimetype": "application/pdf"},
        {"name": "e.txt", "mimetype": "text/plain"},
    ]
    assert SlackFiles.count_images(files) == 4


async def test_the_screen_judges_declared_type_and_size_and_fetches_nothing(
    fake: FakeSlack, files: SlackFiles
) -> None:
    files.screen([{"name": "ok.png", "mimetype": "image/png", "size": 1024 * 1024}])
    files.screen([{"name": "odd.png", "mimetype": "image/png", "size": "not a number"}])
    with pytest.raises(NotAnImage, match=r"'doc\.pdf'.*application/pdf"):
        files.screen([{"name": "doc.pdf", "mimetype": "application/pdf"}])
    with pytest.raises(ImageTooLarge, match=r"'big\.png'.*1 MB"):
        files.screen([{"name": "big.png", "mimetype": "image/png", "size": 1024 * 1024 + 1}])
    assert fake.calls == []


async def test_a_stub_found_to_be_no_image_is_not_fetched(
    fake: FakeSlack, files: SlackFiles
) -> None:
    info = fake.add_file("notes.txt", b"words", mimetype="text/plain")
    with pytest.raises(NotAnImage, match=r"notes\.txt"):
        await files.fetch({"id": info["id"], "file_access": "check_file_info"})
    assert fake.downloads == []


async def test_a_download_reads_at_most_the_cap_of_a_body_with_no_length(fake: FakeSlack) -> None:
    downloader = _files(fake, max_mb=0.5)
    await downloader.open()
    try:
        info = fake.add_growing_file("liar.png", PNG, padding=8 * 1024 * 1024)
        with pytest.raises(ImageTooLarge, match=r"liar\.png"):
            await downloader.fetch(info)
    finally:
        await downloader.close()
    [end] = await fake.wait_for("download.end")
    assert not end.params["complete"]


async def test_a_compressed_answer_is_refused_not_inflated(
    fake: FakeSlack, files: SlackFiles
) -> None:
    bomb = gzip.compress(bytes(64 * 1024 * 1024))
    with pytest.raises(BotError, match=r"'zip\.png' compressed"):
        await files.fetch(fake.add_file("zip.png", bomb, encoding="gzip"))
    [download] = fake.downloads
    assert download.headers["Accept-Encoding"] == "identity"


@pytest.mark.parametrize(
    "url",
    [
        "https://files.slack.com/files-pri/T1-F1/a.png",
        "https://files-edu.slack.com/files-pri/T1-F1/a.png",
        "https://a.slack-edge.com/x.png",
    ],
)
def test_slack_hosts_are_trusted(url: str) -> None:
    assert _trusting().trusted(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://files.slack.com/a.png",
        "https://files.slack.com.evil.example/a.png",
        "https://evilslack.com/a.png",
        "https://example.com/a.png",
        "http://127.0.0.1:9/a.png",
    ],
)
def test_other_hosts_are_not(url: str) -> None:
    assert not _trusting().trusted(url)


def _trusting() -> SlackFiles:
    api = "https://slack.com/api/"
    return SlackFiles(token="t", api_url=api, web=AsyncWebClient(base_url=api), max_mb=1)
