"""Every read surface's output over one index, as one JSON file: to show that a refactor changes no
answer, page or tool result (issue 21). Run it with the old code and the new over the same index
and compare the two files.

    git worktree add /tmp/old <commit>
    rm -rf INDEX/cache/chapters-*; PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/surface_snapshot.py INDEX old.json
    rm -rf INDEX/cache/chapters-*; .venv/bin/python benchmarks/surface_snapshot.py INDEX new.json
    python -c "import json;a,b=(json.load(open(f)) for f in ('old.json','new.json'));print([k for k in a if a[k]!=b[k]])"

Covers `search`/`ask` (JSON and text), `episodes`, `chapters`, `notes`, the web page (home with a
question, episode pages), the JSON API and the MCP tools. The chapter caches are deleted before
each run so that both codes make the chapters themselves.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from hmsearch.cli import cli

QUESTIONS = [
    "what should sales do on social media",
    "Hvor hurtigt skal man svare kunder på sociale medier?",
    "How quickly should a company reply to customers?",
    '"svare inden for to timer"',
    "what is consciousness",
    "The following is a conversation with",
    "deep learning and neural networks",
    "asdf qwerty",
]


def snapshot(index: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["--index-dir", str(index), *args], catch_exceptions=False)
        return result.exit_code, result.output

    for q in QUESTIONS:
        out[f"search {q}"] = run("search", q, "-k", "5", "--json")
        out[f"ask {q}"] = run("ask", q, "--json")
        out[f"ask-text {q}"] = run("ask", q)
    episodes = json.loads(run("episodes", "--json")[1])
    out["episodes"] = run("episodes", "--json")
    out["episodes-ch"] = run("episodes", "--chapters")
    for e in episodes:
        out[f"chapters {e['episode']}"] = run("chapters", e["episode"], "--json")
        out[f"notes {e['episode']}"] = run("notes", e["episode"], "--json")

    from starlette.testclient import TestClient

    from hmsearch.mcp_server import build_server
    from hmsearch.query import QueryService
    from hmsearch.web.app import create_app, create_service

    web = TestClient(create_app(create_service(index)))
    for q in QUESTIONS[:5]:
        out[f"web / {q}"] = web.get("/", params={"q": q}).text
        out[f"web api ask {q}"] = web.get("/api/ask", params={"q": q}).text
    for e in episodes:
        out[f"web ep {e['episode']}"] = web.get(f"/episode/{e['episode']}", params={"t": 30}).text
        out[f"web tr {e['episode']}"] = web.get(f"/api/episodes/{e['episode']}/transcript").text
    out["web api episodes"] = web.get("/api/episodes").text

    server = build_server(QueryService(index))

    async def tools() -> dict[str, str]:
        found = {}
        for e in episodes:
            found[e["episode"]] = str(
                await server.call_tool("transcript", {"episode": e["episode"], "start": 10, "end": 90})
            )
        found["episodes"] = str(await server.call_tool("episodes", {}))
        found["ask"] = str(await server.call_tool("ask", {"question": QUESTIONS[0]}))
        return found

    out["mcp"] = asyncio.run(tools())
    return out


def main() -> None:
    index, target = Path(sys.argv[1]), Path(sys.argv[2])
    out = snapshot(index)
    target.write_text(json.dumps(out, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    print(f"{len(out)} outputs -> {target}")


if __name__ == "__main__":
    main()
