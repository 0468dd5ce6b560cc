"""A file the ingesting process may not read is reported and skipped; the rest goes in.

Root reads everything, so when the suite runs as root the ingest runs with the
capabilities that let root bypass file permissions dropped (setpriv).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_corpus

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _without_root_file_access(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without util-linux setpriv to drop CAP_DAC_OVERRIDE")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]


def test_unreadable_file_is_reported_and_skipped(tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus)
    secret = corpus / "secret.md"
    secret.write_text("# Secret\n\nNobody may read this.\n")
    secret.chmod(0o000)
    try:
        command = [sys.executable, "-m", "rag.cli", "ingest", str(corpus), "--index", str(tmp_path / "idx"), "--json"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_INGEST__CHUNK_TOKENS": "64"}
        done = subprocess.run(_without_root_file_access(command), env=env, capture_output=True, text=True, timeout=600)
    finally:
        secret.chmod(0o644)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ingested"] == 8
    assert [(Path(f["path"]).name, "permission denied" in f["error"]) for f in report["failed"]] == [("secret.md", True)]
