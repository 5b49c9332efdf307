"""Issue 26, the batch operator: a dead feed item (an enclosure that answers 404) fails a bounded
number of `update` runs and then stops failing them. Failed items are kept in the index's
failures.json: retried after a backoff, "failing" (skipped, exit 0, silent with -q) after
--max-tries tries, listed by `episodes --failed`, tried at once with `update --retry-failed`, and
forgotten once they succeed or leave the feed. A real HTTP server on 127.0.0.1 serves the feed;
items carry transcripts (indexed with the HashingEncoder stand-in), so no model runs.

The backoff is tested with update_feed's clock, or by moving the recorded times into the past:
no test sleeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hmsearch.cli.index as cli_index
from hmsearch.asr import TranscriberSpec
from hmsearch.index import IndexStore
from hmsearch.ingest import IndexOptions
from hmsearch.ingest.update import update_feed
from test_feeds import Server, rss, srt

from helpers import HashingEncoder

GOOD = {"guid": "hm-good", "title": "Nyhedsbreve", "srt": "/good.srt", "day": 0}
DEAD = {"guid": "hm-dead", "title": "Forsvundet", "audio": "/dead.mp3", "day": 7}  # no route: 404


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cli_index, "indexing_encoder", lambda store, name: HashingEncoder())
    s = Server()
    s.routes["/good.srt"] = (200, "application/x-subrip", srt("Vi taler om nyhedsbreve.", "Hver tirsdag."), None)
    yield s
    s.close()


def run(cli, server: Server, items: list[dict], *args: str):
    """`hmsearch update` of a feed of ``items`` (global options such as -q may follow the command)."""
    server.routes["/feed.xml"] = (200, "application/rss+xml", rss(server, items), None)
    return cli("update", "--feed", f"{server.url}/feed.xml", *args)


def age(index: Path, hours: float) -> None:
    """Move every recorded failure ``hours`` into the past (as if that long had passed)."""
    path = index / "failures.json"
    data = json.loads(path.read_text())
    for row in data["items"]:
        row["first"] -= hours * 3600
        row["last"] -= hours * 3600
    path.write_text(json.dumps(data))


def failed_items(cli) -> list[dict]:
    res = cli("episodes", "--failed", "--json")
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


def test_a_dead_item_fails_n_runs_then_the_run_is_silent(cli, server, hermetic):
    index, log = hermetic / "index", hermetic / "cron.log"
    for n in (1, 2, 3):
        res = run(cli, server, [GOOD, DEAD], "--log-file", str(log), "-q")
        assert res.exit_code == 8, (n, res.stdout, res.stderr)
        assert "1 failed" in res.stdout
        gave_up = "note: hm-dead: failing after 3 tries" in res.stderr
        assert gave_up == (n == 3), (n, res.stderr)  # said once, with the run that gives up
        age(index, 25)
    res = run(cli, server, [GOOD, DEAD], "--log-file", str(log), "-q")
    assert (res.exit_code, res.stdout, res.stderr) == (0, "", "")  # cron sees silence
    res = run(cli, server, [GOOD, DEAD])
    assert res.exit_code == 0 and res.stdout.strip() == "0 new, 0 updated, 0 failed, 1 unchanged, 1 failing (skipped)"
    lines = log.read_text().splitlines()
    outcomes = [line for line in lines if " update http" in line]
    assert len(outcomes) == 4, "every run's outcome is one line in the log"
    assert outcomes[-1].endswith("0 new, 0 updated, 0 failed, 1 unchanged, 1 failing (skipped)")
    assert sum("failing after 3 tries" in line for line in lines) == 1
    assert server.requests.count(("/dead.mp3", None)) == 3, "a failing item is not downloaded again"

    (row,) = failed_items(cli)
    assert (row["feed"], row["guid"], row["title"], row["tries"]) == (
        f"{server.url}/feed.xml",
        "hm-dead",
        "Forsvundet",
        3,
    )
    assert "HTTP 404" in row["reason"] and row["failing"] and row["next_retry"] is None
    assert "--retry-failed" in row["status"]
    text = cli("episodes", "--failed").stdout
    assert "hm-dead" in text and "failing (gave up after 3 tries; `hmsearch update --retry-failed` tries again)" in text


def test_retry_failed_tries_again_and_a_fixed_item_leaves_the_record(cli, server, hermetic):
    index = hermetic / "index"
    for _ in range(3):
        assert run(cli, server, [GOOD, DEAD]).exit_code == 8
        age(index, 25)
    assert run(cli, server, [GOOD, DEAD], "-q").exit_code == 0

    res = run(cli, server, [GOOD, DEAD], "--retry-failed")
    assert res.exit_code == 8 and "HTTP 404" in res.stderr
    assert "note:" not in res.stderr, "giving up is said once"
    assert failed_items(cli)[0]["tries"] == 4

    server.routes["/dead.srt"] = (200, "application/x-subrip", srt("Nu virker det igen."), None)
    fixed = {**DEAD, "srt": "/dead.srt", "audio": None}
    res = run(cli, server, [GOOD, fixed], "-q")  # the feed changed the item: tried at once
    assert (res.exit_code, res.stdout, res.stderr) == (0, "", "")
    assert {e["episode"] for e in json.loads(cli("episodes", "--json").stdout)} == {"hm-good", "hm-dead"}
    assert failed_items(cli) == [] and not (index / "failures.json").exists()


def test_the_server_fixed_under_the_same_url_is_indexed_after_the_backoff(cli, server, hermetic):
    index = hermetic / "index"
    server.routes["/dead.srt"] = (404, "text/plain", b"not yet", None)
    late = {**DEAD, "srt": "/dead.srt", "audio": None}
    assert run(cli, server, [GOOD, late]).exit_code == 8
    server.routes["/dead.srt"] = (200, "application/x-subrip", srt("Nu virker det."), None)
    res = run(cli, server, [GOOD, late])
    assert res.exit_code == 0 and "1 waiting to retry" in res.stdout  # within the backoff: not tried
    age(index, 2)
    res = run(cli, server, [GOOD, late])
    assert res.exit_code == 0 and res.stdout.startswith("1 new"), res.stdout
    assert failed_items(cli) == []


def test_backoff_skips_an_item_failed_a_moment_ago(server, tmp_path):
    server.routes["/feed.xml"] = (200, "application/rss+xml", rss(server, [GOOD, DEAD]), None)
    store = IndexStore(tmp_path / "ix")
    t0 = 1_800_000_000.0

    def update(at: float, **kw):
        return update_feed(
            f"{server.url}/feed.xml",
            store,
            audio_dir=tmp_path / "audio",
            encoder=HashingEncoder(),
            options=IndexOptions(TranscriberSpec("turbo")),
            clock=lambda: at,
            **kw,
        )

    assert [g for g, _ in update(t0).failed] == ["hm-dead"]
    report = update(t0 + 60)  # a minute later: not tried, not a failure
    assert report.failed == [] and report.waiting == [("hm-dead", t0 + 3600)]
    assert server.requests.count(("/dead.mp3", None)) == 1
    assert [g for g, _ in update(t0 + 3601).failed] == ["hm-dead"]  # after the first hour: tried
    report = update(t0 + 3601 + 3600)  # the second wait is two hours
    assert report.failed == [] and report.waiting == [("hm-dead", t0 + 3601 + 7200)]
    assert [g for g, _ in update(t0 + 3602, retry_failed=True).failed] == ["hm-dead"]
    assert [g for g, _ in update(t0 + 3603, max_tries=10, retry_failed=True).failed] == ["hm-dead"]
    assert update(t0 + 3604, max_tries=2).failing == ["hm-dead"]  # 4 tries >= 2: given up


def test_a_feed_that_drops_the_item_forgets_it(cli, server, hermetic):
    assert run(cli, server, [GOOD, DEAD]).exit_code == 8
    assert [r["guid"] for r in failed_items(cli)] == ["hm-dead"]
    assert run(cli, server, [GOOD]).exit_code == 0
    assert failed_items(cli) == []


def test_the_first_update_of_a_new_index_is_not_refused(cli, server, hermetic):
    """The downloads go into the index folder (its downloads/): the run that made the folder then
    commits into it, rather than calling it "not an hmsearch index" (exit 4)."""
    res = run(cli, server, [GOOD])
    assert res.exit_code == 0 and res.stdout.startswith("1 new"), res.stderr
    assert (hermetic / "index" / "downloads").is_dir()


def test_a_first_run_whose_only_item_is_dead_does_not_block_the_next(cli, server, hermetic):
    """Nothing committed yet, but downloads/ and failures.json in the index folder: the next run
    is an update, not "not an hmsearch index" (exit 4)."""
    assert run(cli, server, [DEAD]).exit_code == 8
    age(hermetic / "index", 25)
    res = run(cli, server, [DEAD])
    assert res.exit_code == 8 and "HTTP 404" in res.stderr, res.stderr
    assert failed_items(cli)[0]["tries"] == 2


def test_a_damaged_failures_file_is_a_warning_not_a_crash(cli, server, hermetic):
    index = hermetic / "index"
    assert run(cli, server, [GOOD, DEAD]).exit_code == 8
    (index / "failures.json").write_bytes(b'{"version": 1, "items": [{"feed": 3}]')
    res = cli("episodes", "--failed", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout) == []
    assert res.stderr.count("\n") == 1 and "failures.json: damaged" in res.stderr
    res = run(cli, server, [GOOD, DEAD])
    assert res.exit_code == 8 and "Traceback" not in res.stderr
    (warning,) = [line for line in res.stderr.splitlines() if "failures.json" in line]
    assert warning.startswith("note: ") and "damaged" in warning
    assert failed_items(cli)[0]["tries"] == 1, "counted afresh, and the file is sound again"
    (index / "failures.json").write_bytes(b"\0\xff not json")
    res = run(cli, server, [GOOD, DEAD], "-q")
    assert res.exit_code == 8 and "Traceback" not in res.stderr
    (index / "failures.json").write_text("[]")
    res = run(cli, server, [GOOD], "-q")  # nothing failed: the damaged file is removed, said once
    assert (res.exit_code, res.stdout, res.stderr) == (0, "", "")
    assert not (index / "failures.json").exists()


def test_a_dry_run_says_what_it_would_skip_and_writes_no_record(cli, server, hermetic):
    assert run(cli, server, [GOOD, DEAD]).exit_code == 8
    before = (hermetic / "index" / "failures.json").read_bytes()
    res = run(cli, server, [GOOD, DEAD], "--dry-run")
    assert res.exit_code == 0 and "would skip (failed; retried from " in res.stdout and "hm-dead" in res.stdout
    assert (hermetic / "index" / "failures.json").read_bytes() == before
