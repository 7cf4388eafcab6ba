"""The contract test's own check (loaded through schemathesis.toml's `hooks`).

schemathesis.toml lets two operations answer a schema-valid request with a status that
`positive_data_acceptance` would otherwise fail, because the refusal is about the server's state
and no schema can express it. This check keeps those exceptions exactly that narrow: the status
must carry one of the problem codes that say so.
"""

import uuid

import schemathesis

# (method, path template) -> {status: the problem codes a schema-valid request may get}
STATE_REFUSALS = {
    # A well-formed cursor that this API did not issue for this listing.
    ("GET", "/orders"): {400: {"invalid_cursor"}},
    # The caller has no profile yet; chefId names no chef, or a chef without a pickup point.
    ("POST", "/orders"): {422: {"profile_required", "not_a_chef", "chef_location_missing"}},
    # driverId names no driver.
    ("POST", "/orders/{id}/assign"): {422: {"not_a_driver"}},
}


@schemathesis.check
def valid_requests_are_refused_only_for_state(ctx, response, case):
    """A schema-valid request refused with 400 or 422 was refused for the state, not its shape."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code not in (400, 422):
        return None
    allowed = STATE_REFUSALS.get((case.method.upper(), case.operation.path), {})
    codes = set(allowed.get(response.status_code, set()))
    # An Idempotency-Key used before with another request (the key, not the request's shape).
    if case.method.upper() == "POST" and case.operation.path.startswith("/orders"):
        if response.status_code == 422:
            codes.add("idempotency_key_reused")
    try:
        code = response.json().get("code")
    except ValueError:
        code = None
    if code not in codes:
        raise AssertionError(
            f"a schema-valid request was refused with {response.status_code} `{code}`, "
            f"which is about its shape: the schema should not allow it"
            + (f" (only {sorted(codes)} may answer it)" if codes else "")
        )
    return None


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """A schema-valid Idempotency-Key gets a value of its own per request.

    Generated keys repeat (`0`, `!`), and a key used again with another request is refused
    (422 `idempotency_key_reused`), so most transitions would only ever meet that refusal and
    never run. What a key does is tested in the HTTP API's own tests; here each request runs.
    Negative cases keep their (invalid) key, which must still be refused.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    return None
