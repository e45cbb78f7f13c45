"""The web dashboard in real Chromium (Debian's, driven by Playwright): its content against the
store, its own refresh, pause with the token from sessionStorage, no request leaving the
server, and a screenshot under the test's folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.helpers import TOKEN, Http
from tests.coordinator.helpers import Serve, store_of
from tests.helpers import free_port, run_cli, wait_for
from wellkept.history import schedules
from wellkept.reports.render import when_text

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
BROKEN = """\
tasks:
  broken: {kind: cleanup, target: app, table: no_such_table, date_column: created_at,
           retention: 30d}
"""


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make tools`"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def test_the_dashboard_shows_the_store_refreshes_and_pauses_with_the_token(
        api_config: Callable[..., Path], tmp_path: Path, browser: Any) -> None:
    port = free_port()
    cfg = api_config(port=port)
    cfg.write_text(cfg.read_text().replace("tasks:\n", BROKEN, 1), encoding="utf-8")
    for task in ("health-check", "app-stats", "purge", "broken"):
        run_cli("-c", str(cfg), "run", task)
    store = store_of(cfg)
    runs = store.list_runs(limit=50)
    assert [r.task for r in runs][::-1] == ["health-check", "app-stats", "purge", "broken"]
    serve = Serve(cfg, "dashboard", "--listen", f"127.0.0.1:{port}")
    base = f"http://127.0.0.1:{port}"
    try:
        Http(base).wait_up()
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{base}/maintenance/dashboard?refresh=2")

        # content against the store
        for run in runs:
            row = page.locator(f"#recent tr[data-run='{run.run_id}']")
            assert row.count() == 1, run.task
            assert str(run.status) in row.inner_text()
        broken = next(r for r in runs if r.task == "broken")
        failure = page.locator(f"#failures .failure[data-run='{broken.run_id}']")
        assert failure.count() == 1 and broken.message[:40] in failure.inner_text()
        app_row = page.locator("#health tr[data-target='app']").inner_text()
        assert "up" in app_row
        assert "CPU" in page.locator("#host-figures").inner_text()
        for row in schedules.states(store).values():
            assert row.next_fire_at is not None
            cell = page.locator(f"#schedules tr[data-schedule='{row.schedule}'] td.next")
            assert cell.inner_text() == when_text(row.next_fire_at)
        assert page.locator("#charts svg.wk-chart").count() == 5
        assert page.locator("[data-chart='rows_freed'] rect.wk-s0").count() >= 1

        # it refreshes itself: a run made now appears without a reload
        run_cli("-c", str(cfg), "run", "app-stats")
        newest = store.list_runs(limit=1)[0]
        page.wait_for_selector(f"#recent tr[data-run='{newest.run_id}']", timeout=15_000)

        # pause needs the token: without it nothing changes
        pause = page.locator("#schedules tr[data-schedule='nightly'] button.pause-resume")
        assert pause.inner_text() == "Pause"
        pause.click()
        page.wait_for_selector("#message.error")
        assert "enter the API token" in page.locator("#message").inner_text()
        assert not schedules.states(store)["nightly"].paused

        # with the token (kept in sessionStorage, never in the page), it pauses
        page.fill("#token", TOKEN)
        page.click("#token-save")
        assert page.evaluate("sessionStorage.getItem('wellkept-api-token')") == TOKEN
        page.locator("#schedules tr[data-schedule='nightly'] button.pause-resume").click()
        assert wait_for(lambda: schedules.states(store)["nightly"].paused, 15)
        assert schedules.states(store)["nightly"].paused_by == "api@127.0.0.1"
        page.wait_for_selector("#schedules tr[data-schedule='nightly'] td.state >> text=paused")
        # a paused schedule has no next fire: its slots are skipped until it is resumed
        page.wait_for_selector("#schedules tr[data-schedule='nightly'] td.next >> text=paused")
        assert page.locator("#schedules tr[data-schedule='nightly'] button").inner_text() == \
            "Resume"
        assert not schedules.states(store)["hourly-stats"].paused
        assert TOKEN not in page.content()
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    finally:
        assert serve.stop() == 0, serve.text()
    assert (tmp_path / "dashboard.png").stat().st_size > 20_000
    assert errors == []
    assert requested and all(url.startswith(base) or url.startswith("data:")
                             for url in requested), requested     # no CDN, nothing outside
