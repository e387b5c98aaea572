"""The review console in a real browser (Playwright driving Debian's chromium) over a demo data dir that the
real gateway and verifier filled from real footage: list, filter, open, label, and the label in the store."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.footage import cut

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (`make services`); Playwright downloads nothing
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory, vtest: Path, tree_clip: Path, gateway_model_dir: Path) -> Path:
    """`vigia demo` on 4 s of vtest.avi (people walking: confirmed) and tree.avi (a hand at the lens)."""
    from vigia.demo import run_demo

    root = tmp_path_factory.mktemp("console")
    plaza = cut(vtest, root / "plaza.avi", 4)
    assert run_demo([str(plaza), str(tree_clip)], root / "demo") == 0
    return root / "demo"


@pytest.fixture(scope="module")
def console(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from cloud.api import build_console
    from cloud.feedback.wiring import settings_for_data_dir

    server = build_console(settings_for_data_dir(demo_dir), cache_dir=tmp_path_factory.mktemp("console-cache"),
                           port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.url
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: `make services` installs Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def store(demo_dir: Path) -> Iterator:
    from cloud.events.sqlite import SqliteEventStore

    events = SqliteEventStore(demo_dir / "cloud" / "events.sqlite3")
    yield events
    events.close()


def wait_until(page, script: str, timeout_s: float = 30.0) -> None:
    """Poll a JS expression (the page's CSP forbids the eval behind Playwright's wait_for_function)."""
    for _ in range(int(timeout_s * 10)):
        if page.evaluate(script):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"still false after {timeout_s} s: {script}")


def card_ids(page) -> list[str]:
    return page.eval_on_selector_all("#event-list li", "cards => cards.map(c => c.dataset.eventId)")


def apply_filters(page, expect, count: int, **fields: str) -> list[str]:
    page.click("#filters button[type=reset]")
    wait_until(page, "location.hash === '#/events'")
    for name, value in fields.items():
        field = page.locator(f"#filters [name={name}]")
        if name in ("verdict", "label"):
            field.select_option(value)
        else:
            field.fill(value)
    page.click("#filters button[type=submit]")
    expect(page.locator("#list-status")).to_have_text(f"{count} event(s), newest first")
    return card_ids(page)


def test_list_and_filters_show_exactly_what_the_store_holds(console: str, page, store) -> None:
    from playwright.sync_api import expect

    stored = store.query(limit=100)
    by_camera = {r.camera_id: r for r in stored}
    assert sorted(by_camera) == ["plaza", "tree"] and by_camera["plaza"].decision == "confirmed"
    assert by_camera["tree"].decision in ("rejected", "uncertain")  # a hand at the lens is no alert

    page.goto(f"{console}/")
    expect(page.locator("#event-list li")).to_have_count(len(stored))
    assert card_ids(page) == [r.event_id for r in stored]  # newest first, as the store orders them
    # thumbnails are the stored snapshots, decoded by the browser at their own size
    wait_until(page, "[...document.querySelectorAll('#event-list img')].every(i => i.complete)")
    widths = page.eval_on_selector_all("#event-list img", "imgs => imgs.map(i => i.naturalWidth)")
    snapshots = [cv2.imdecode(np.frombuffer((store_objects(store) / r.snapshot_key).read_bytes(), np.uint8),
                              cv2.IMREAD_COLOR) for r in stored]
    assert widths == [s.shape[1] for s in snapshots]

    assert apply_filters(page, expect, 1, verdict="confirmed") == [by_camera["plaza"].event_id]
    assert "verdict=confirmed" in page.evaluate("location.hash")
    assert apply_filters(page, expect, 1, camera="tree") == [by_camera["tree"].event_id]
    low = round(min(r.score for r in stored) + 0.01, 2)
    expected = [r.event_id for r in store.query(score_low=low, limit=100)]
    assert apply_filters(page, expect, len(expected), score_low=str(low)) == expected
    plaza_day = by_camera["plaza"].started_at[:10]
    since = f"{plaza_day}T00:00:00.000Z"
    expected = [r.event_id for r in stored if r.started_at >= since]
    # the page's time fields are in the browser's local time
    local = page.evaluate("iso => { const d = new Date(iso); "
                          "return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19); }", since)
    assert apply_filters(page, expect, len(expected), since=local) == expected
    page.click("#filters button[type=reset]")
    expect(page.locator("#event-list li")).to_have_count(len(stored))


def store_objects(store) -> Path:
    return Path(store.path).parent / "objects"


def test_open_an_event_and_label_it_the_label_reaches_the_store(console: str, page, store, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    [plaza] = store.query(camera_id="plaza", limit=10)
    gateway_boxes = plaza.candidate_facts()["boxes"]
    verifier_boxes = plaza.verdict().boxes
    assert gateway_boxes and verifier_boxes

    page.goto(f"{console}/")
    page.click(f"#event-list li[data-event-id='{plaza.event_id}'] a")
    expect(page.locator("[data-testid=verdict]")).to_have_text("confirmed")
    # both stages' boxes drawn over the snapshot
    expect(page.locator("[data-testid=boxes] .gateway-box rect")).to_have_count(len(gateway_boxes))
    expect(page.locator("[data-testid=boxes] .verifier-box rect")).to_have_count(len(verifier_boxes))
    expect(page.locator("#event")).to_contain_text(plaza.verdict().reasons[0])
    expect(page.locator("#event")).to_contain_text("may be another moment of the clip")
    # the clip plays in the browser (a remuxed MP4 of the gateway's segment), as long as the stored one
    wait_until(page, "document.querySelector('[data-testid=clip]').readyState >= 1")
    duration = page.evaluate("document.querySelector('[data-testid=clip]').duration")
    with av.open(str(store_objects(store) / plaza.clip_key)) as clip:
        times = [f.time for f in clip.decode(video=0)]
    frame_s = (times[-1] - times[0]) / (len(times) - 1)
    assert abs(duration - (times[-1] - times[0] + frame_s)) <= frame_s
    assert page.get_attribute("[data-testid=download]", "href") == f"/api/events/{plaza.event_id}/clip?download=1"

    page.fill("[data-testid=feedback] input[name=by]", "reviewer-1")
    page.fill("[data-testid=feedback] input[name=note]", "a coat on the railing")
    page.click("[data-testid=feedback] button[data-label=not-person]")
    expect(page.locator("[data-testid=feedback-result]")).to_have_text(
        "Saved: not-person (added to this camera's false-positive memory)", timeout=60_000)
    expect(page.locator("[data-testid=current-label]")).to_contain_text("Labeled not-person")
    page.screenshot(path=str(tmp_path / "event.png"), full_page=True)  # for a person to look at; not committed

    record = store.get(plaza.event_id)
    assert record.label == "not-person"
    [entry] = json.loads(record.feedback_json)
    assert (entry["label"], entry["by"], entry["note"], entry["source"]) == (
        "not-person", "reviewer-1", "a coat on the railing", "console")
    # and the list now filters on it
    page.goto(f"{console}/#/events?label=not-person")
    expect(page.locator("#event-list li")).to_have_count(1)
    assert card_ids(page) == [plaza.event_id]


def test_review_sets_open_and_link_to_their_events(console: str, page, store, demo_dir: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from playwright.sync_api import expect

    from cloud.sampler.policy import SamplingPolicy, Window
    from cloud.sampler.review_store import FolderReviewStore
    from cloud.sampler.run import run_sampler
    from cloud.sampler.settings import default_review_root
    from cloud.storage.local import FolderObjectStore

    [plaza] = store.query(camera_id="plaza", limit=10)
    cloud_dir = demo_dir / "cloud"
    review = FolderReviewStore(default_review_root(cloud_dir))
    result = run_sampler(store, FolderObjectStore(cloud_dir / "objects"), review,
                         Window.ending(datetime.now(UTC) + timedelta(hours=1), hours=48),
                         SamplingPolicy(random_share=1.0))
    assert result.run_id and result.picked == 1

    page.goto(f"{console}/#/review-sets")
    page.click(f"#review-sets a:text-is('{result.run_id}')")
    rows = page.locator("[data-testid=review-set] tr[data-event-id]")
    expect(rows).to_have_count(1)
    assert rows.first.get_attribute("data-event-id") == plaza.event_id
    rows.first.locator("a").click()
    expect(page.locator("[data-testid=verdict]")).to_have_text("confirmed")
    assert page.evaluate("location.hash") == f"#/event/{plaza.event_id}"
