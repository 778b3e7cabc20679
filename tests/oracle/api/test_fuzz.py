"""Property-based fuzzing of every endpoint in the OpenAPI file: no 5xx, responses match the spec."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from oracle.api.app import OPENAPI

# Every built-in check but positive-data acceptance: a schema-valid body with a wrong signature, or
# a schema-valid string that is not a CID, is rightly refused, and no JSON schema can say so.
CONFIG = {"checks": {"positive_data_acceptance": {"enabled": False}}}


@pytest.fixture
def api_schema() -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_path(
        OPENAPI, config=schemathesis.config.SchemathesisConfig.from_dict(CONFIG)
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_endpoint_fails_and_every_answer_matches_the_spec(
    case: schemathesis.Case, threaded_api: str
) -> None:
    case.call_and_validate(base_url=threaded_api)
