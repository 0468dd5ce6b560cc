"""Schemathesis against the served `/openapi.json`: hundreds of generated requests, valid and not,
and never a 5xx. The server is a fresh one (fuzzed uploads must not leak into other tests), with
small limits so generated uploads ingest quickly and generated generative requests stay short."""

from __future__ import annotations

from collections import Counter
from itertools import product

import pytest
import schemathesis
from schemathesis.generation import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from tests.integration.conftest import serving

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 40  # per operation and mode
MIN_REQUESTS = 500


@pytest.fixture(scope="session")
def fuzz_url(tmp_path_factory, tiny_image_model_dir, tiny_caption_model_dir, tiny_video_model_dir):
    # Tiny media models and small limits: generated requests exercise every route quickly.
    with serving(tmp_path_factory.mktemp("fuzz-server"), RAG_API__MAX_UPLOAD_MB="0.02",
                 RAG_GENERATOR__MAX_NEW_TOKENS="4", RAG_API__MAX_COMPLETION_TOKENS="4",
                 RAG_MEDIA__IMAGE_MODEL=str(tiny_image_model_dir), RAG_MEDIA__IMAGE_STEPS="1", RAG_MEDIA__MAX_IMAGE_SIDE="64",
                 RAG_MEDIA__CAPTION_MODEL=str(tiny_caption_model_dir), RAG_MEDIA__VIDEO_MODEL=str(tiny_video_model_dir),
                 RAG_MEDIA__VIDEO_STEPS="1", RAG_MEDIA__VIDEO_FRAMES="2", RAG_MEDIA__MAX_VIDEO_SIDE="32") as url:
        yield url


def test_no_generated_request_gets_a_server_error(fuzz_url):
    # Schemathesis' own pytest fixture loader breaks on pytest 9, so each operation's Hypothesis
    # strategy is driven here directly; the cases and checks are Schemathesis' all the same.
    schema = schemathesis.openapi.from_url(f"{fuzz_url}/openapi.json")
    sent: Counter[str] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8

    for operation, mode in product(operations, GenerationMode):  # valid requests, and invalid ones
        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def call(case):
            response = case.call(timeout=120)
            sent[f"{mode.value} {case.method} {case.path}"] += 1
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:500]}")
            if response.status_code >= 400 and case.path not in ("/metrics",):
                assert "message" in response.json()["error"]  # every error is JSON in the documented shape

        try:
            call()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # an operation without inputs has no invalid requests
    assert sum(sent.values()) >= MIN_REQUESTS, dict(sent)
