"""Schemathesis hooks of crates/cli/tests/api_schema.rs (loaded through SCHEMATHESIS_HOOKS).

Schemathesis logs in as one administrator, named by SHIPSHAPE_SCHEMATHESIS_ACTOR. It calls
every operation, the destructive ones included, and takes values it has seen in answers (user
names from `GET /api/v1/users`) as input for others: left alone it would sooner or later remove
its own account or set its password, and every later answer would be a 401 that the document
allows, hiding what those requests would have found. The two operations that act on one user
by name are sent to another user when they name this one; every other user, the first
administrator included, stays fair game.
"""

import os

import schemathesis

ACTOR = os.environ["SHIPSHAPE_SCHEMATHESIS_ACTOR"]
USER_PATHS = {"/api/v1/users/{name}", "/api/v1/users/{name}/password"}


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path in USER_PATHS and (case.path_parameters or {}).get("name") == ACTOR:
        case.path_parameters["name"] = ACTOR + "-not"
