"""`hmsearch mcp` through the MCP SDK's own client: stdio_client spawns the installed `hmsearch mcp`
over a real index of the bundled sample episode (default multilingual-e5-small), lists the
tools and calls each; every result carries episode, title, start, end and a link."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HMSEARCH = Path(sys.executable).with_name("hmsearch")


@pytest.fixture(scope="module")
def index(tmp_path_factory, shared_model_dir):
    home = tmp_path_factory.mktemp("mcp-home")
    (home / "models").symlink_to(shared_model_dir)
    eps = home / "eps"
    eps.mkdir()
    for name in ("hm-sample-001.mp3", "hm-sample-001.json"):
        shutil.copy(ROOT / "audio" / name, eps / name)
    env = _env(home)
    done = subprocess.run(
        [str(HMSEARCH), "--index-dir", str(home / "index"), "index", str(eps)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return home


def _env(home: Path) -> dict[str, str]:
    """A clean environment; models built from installed packages go to the session's shared folder
    (conftest's shared_model_dir), which `home/models` links to."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HMSEARCH_")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / "cache"), HMSEARCH_MODEL_DIR=str(home / "models"))
    return env


def _session(home: Path, *extra: str):
    from mcp.client.stdio import StdioServerParameters

    return StdioServerParameters(
        command=str(HMSEARCH), args=["--index-dir", str(home / "index"), "mcp", *extra], env=_env(home)
    )


async def _run(params, calls):
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        results = [await session.call_tool(name, args) for name, args in calls]
        return tools, results


def _payload(result) -> dict:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def _cites(d: dict) -> None:
    for key in ("episode", "title", "start", "end", "link"):
        assert key in d, (key, d)
    assert d["end"] >= d["start"] >= 0 and d["link"]


def test_tools_answer_with_citable_moments(index):
    import anyio

    calls = [
        ("ask", {"question": "What should the sales team do on social media?"}),
        ("search", {"query": "svare inden for to timer", "k": 2}),
        ("search", {"query": '"inden for 2 timer på hverdage"'}),
        ("episodes", {}),
        ("transcript", {"episode": "hm-sample-001", "start": 130, "end": 150}),
    ]
    tools, (ask, search, quote, episodes, transcript) = anyio.run(_run, _session(index), calls)
    assert {t.name for t in tools.tools} == {"search", "ask", "episodes", "transcript"}
    assert all(t.description for t in tools.tools)

    got = _payload(ask)
    # The answer is what the guest says, not the intro that announces the topic (issue 23).
    assert got["answer"] and got["abstained"] is False
    assert "I dag skal vi tale om" not in got["answer"][0]["text"] and got["answer"][0]["start"] > 15
    for s in got["answer"] + got["hits"]:
        _cites(s)
    assert got["answer"][0]["link"].startswith("file://") and "hm-sample-001.mp3#t=" in got["answer"][0]["link"]

    hits = _payload(search)["hits"]
    assert 1 <= len(hits) <= 2 and all(h["episode"] == "hm-sample-001" for h in hits)
    for h in hits:
        _cites(h)
    q = _payload(quote)["hits"][0]
    assert "2 timer" in q["text"] and q["end"] - q["start"] < 10  # the quote's own span

    eps = _payload(episodes)["episodes"]
    assert [e["episode"] for e in eps] == ["hm-sample-001"]
    _cites(eps[0])

    tr = _payload(transcript)
    _cites(tr)
    assert tr["sentences"] and all(s["end"] > 130 and s["start"] < 150 for s in tr["sentences"])
    assert all(s["link"] for s in tr["sentences"])


def test_errors_reach_the_assistant_with_their_class(index):
    import anyio

    calls = [
        ("transcript", {"episode": "nope"}),
        ("search", {"query": "x", "k": 0}),
        ("ask", {"question": "   "}),
    ]
    _, results = anyio.run(_run, _session(index, "--web-url", "http://127.0.0.1:8000"), calls)
    messages = [r.content[0].text for r in results]
    assert all(r.is_error for r in results), messages
    assert "NotFoundError" in messages[0] and "'nope'" in messages[0]
    assert "InputError" in messages[1] and "k must be" in messages[1]
    assert "InputError" in messages[2] and "empty" in messages[2]
    assert all("Traceback" not in m for m in messages)


def test_web_url_links_into_the_web_page(index):
    import anyio

    _, (result,) = anyio.run(
        _run, _session(index, "--web-url", "http://127.0.0.1:8000/"), [("search", {"query": "LinkedIn", "k": 1})]
    )
    link = _payload(result)["hits"][0]["link"]
    assert link.startswith("http://127.0.0.1:8000/episode/hm-sample-001?t=")
