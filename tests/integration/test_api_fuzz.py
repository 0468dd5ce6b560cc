"""Schemathesis against the served `/openapi.json`: hundreds of generated requests, valid and not,
and never a 5xx. The server is a fresh one (fuzzed uploads must not leak into other tests), with
small limits so generated uploads ingest quickly and generated generative requests stay short."""

from __future__ import annotations

from collections import Counter
from itertools import product

import httpx
import pytest
import schemathesis
from schemathesis.generation import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from rag.api.keys import KeyStore
from tests.integration.conftest import serving

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 40  # per operation and mode
MIN_REQUESTS = 500


@pytest.fixture(scope="session")
def small_limits(tiny_image_model_dir, tiny_caption_model_dir, tiny_video_model_dir) -> dict[str, str]:
    """Tiny media models and small limits: generated requests exercise every route quickly."""
    return dict(RAG_API__MAX_UPLOAD_MB="0.02", RAG_GENERATOR__MAX_NEW_TOKENS="4", RAG_API__MAX_COMPLETION_TOKENS="4",
                RAG_MEDIA__IMAGE_MODEL=str(tiny_image_model_dir), RAG_MEDIA__IMAGE_STEPS="1",
                RAG_MEDIA__MAX_IMAGE_SIDE="64", RAG_MEDIA__CAPTION_MODEL=str(tiny_caption_model_dir),
                RAG_MEDIA__VIDEO_MODEL=str(tiny_video_model_dir), RAG_MEDIA__VIDEO_STEPS="1",
                RAG_MEDIA__VIDEO_FRAMES="2", RAG_MEDIA__MAX_VIDEO_SIDE="32")


@pytest.fixture(scope="session")
def fuzz_url(tmp_path_factory, small_limits):
    with serving(tmp_path_factory.mktemp("fuzz-server"), **small_limits) as url:
        yield url


def fuzz(url: str, *, headers_of=lambda case: {}, check=lambda case, response: None) -> Counter[str]:  # noqa: ANN001
    """Every operation of the served schema, valid and invalid requests, sent with `headers_of(case)`; never a
    5xx, errors in the documented JSON shape, and `check(case, response)` on each. Requests sent, by operation."""
    # Schemathesis' own pytest fixture loader breaks on pytest 9, so each operation's Hypothesis
    # strategy is driven here directly; the cases and checks are Schemathesis' all the same.
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    sent: Counter[str] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8

    for operation, mode in product(operations, GenerationMode):  # valid requests, and invalid ones
        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def call(case):
            response = case.call(timeout=120, headers=headers_of(case))
            sent[f"{mode.value} {case.method} {case.path}"] += 1
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:500]}")
            if response.status_code >= 400 and case.path not in ("/metrics",):
                assert "message" in response.json()["error"]  # every error is JSON in the documented shape
            check(case, response)

        try:
            call()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # an operation without inputs has no invalid requests
    return sent


def test_no_generated_request_gets_a_server_error(fuzz_url):
    sent = fuzz(fuzz_url)
    assert sum(sent.values()) >= MIN_REQUESTS, dict(sent)


SECRETS = {"alpha": "ALPHA7731", "bravo": "BRAVO5512"}


@pytest.fixture(scope="session")
def keyed_fuzz_url(tmp_path_factory, small_limits):
    """A server whose key file holds an admin key and a key per group, with a document only each group reads."""
    folder = tmp_path_factory.mktemp("keyed-fuzz-server")
    store = KeyStore(folder / "keys.json")
    _, admin = store.create("operator", admin=True)
    keys = {group: store.create(group, groups=(group,))[1] for group in SECRETS}
    with serving(folder, upload_key=admin, **small_limits) as url:
        for group, secret in SECRETS.items():
            text = f"# Vault {group}\n\nThe vault of the tides holds the code {secret} for the moon and bees.\n"
            response = httpx.post(f"{url}/documents", files={"file": (f"{group}.md", text.encode(), "text/markdown")},
                                  data={"groups": group}, headers={"Authorization": f"Bearer {admin}"}, timeout=120)
            assert response.status_code == 201, response.text
        yield url, keys


def test_fuzzed_requests_with_group_keys_never_see_the_other_groups_documents(keyed_fuzz_url):
    url, keys = keyed_fuzz_url
    groups = sorted(keys)
    leaks = []

    def group_of(case) -> str:  # noqa: ANN001 - alternate the keys across generated requests
        return groups[hash(repr(case.body) + case.path) % len(groups)]

    def check(case, response) -> None:  # noqa: ANN001
        other = SECRETS[next(g for g in groups if g != group_of(case))]
        if other in response.text and other not in repr(case.body) + repr(case.query):
            leaks.append(f"{group_of(case)} saw {other}: {case.method} {case.formatted_path}")

    sent = fuzz(url, headers_of=lambda case: {"Authorization": f"Bearer {keys[group_of(case)]}"}, check=check)
    assert sum(sent.values()) >= 1000 and not leaks, (sum(sent.values()), leaks[:5])
