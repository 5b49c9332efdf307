"""Hostile JSON-RPC against `hmsearch mcp` (issue 27, finding 11 and the smaller MCP ones): every
line gets a reply — a malformed one the JSON-RPC parse error, a lone surrogate, a NaN time, a bad
date or a boolean k a one-line tool error — and the server keeps serving. The installed `hmsearch`
script over raw pipes, on an index of the sample made with the HashingEncoder stand-in (these
tools read the index; no model is loaded)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp")


from helpers import index_sample

HMSEARCH = Path(sys.executable).with_name("hmsearch")


@pytest.fixture
def server(tmp_path: Path):
    index_sample(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HMSEARCH_")}
    proc = subprocess.Popen(
        [str(HMSEARCH), "--index-dir", str(tmp_path / "ix"), "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    rpc = Rpc(proc)
    rpc.call(
        "initialize",
        {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    )
    rpc.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    yield rpc
    proc.stdin.close()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    assert b"Traceback" not in proc.stderr.read()


class Rpc:
    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.next_id = 1

    def send(self, obj: dict | bytes) -> None:
        line = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def reply(self, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], deadline - time.monotonic())
            if ready:
                line = self.proc.stdout.readline()
                assert line, "the server closed its output"
                msg = json.loads(line)
                if "id" in msg:  # skip notifications (logging)
                    return msg
        raise AssertionError("no reply")

    def call(self, method: str, params: dict) -> dict:
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        self.next_id += 1
        return self.reply()

    def tool(self, name: str, args: dict) -> dict:
        return self.call("tools/call", {"name": name, "arguments": args})["result"]


def _error_text(result: dict) -> str:
    assert result.get("isError"), result
    return result["content"][0]["text"]


def test_every_line_gets_a_reply_and_the_server_goes_on(server: Rpc) -> None:
    server.send(b"{this is not json")
    parse = server.reply()
    assert parse["id"] is None and parse["error"]["code"] == -32700
    # a lone surrogate, as a JSON escape in an argument
    server.send(
        b'{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"transcript","arguments":{"episode":"x\\ud800"}}}'
    )
    got = server.reply()
    assert got["id"] == 77 and got["error"]["code"] == -32602 and "surrogate" in got["error"]["message"]
    # NaN as a time (Python's json writes it)
    server.send(
        b'{"jsonrpc":"2.0","id":78,"method":"tools/call","params":{"name":"transcript",'
        b'"arguments":{"episode":"hm-sample-001","start":NaN}}}'
    )
    got = server.reply()
    assert got["id"] == 78 and "InputError" in _error_text(got["result"])
    assert "InputError" in _error_text(server.tool("search", {"query": "salg", "since": "last week"}))
    refused = _error_text(server.tool("search", {"query": "salg", "k": True}))  # not taken as 1
    assert "integer" in refused.lower(), refused
    fine = server.tool("transcript", {"episode": "hm-sample-001", "start": 140, "end": 150})
    assert not fine.get("isError") and "svare" in json.dumps(fine, ensure_ascii=False)
