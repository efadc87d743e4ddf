"""The OpenAPI documents as a front end reads them, checked against the running platform (issue 18, "an API
contract a front end can trust").

**Every example is sent.** For every operation of every service's document (fetched through the gateway) that
gives a request-body example (the body's own, or, failing that, one built from its fields' examples as Swagger UI
builds it) or a parameter example, each example is sent through the gateway with a token of a
role the operation admits, on a platform seeded as `seed.py` says (the demo catalogue, the base registries, one
account per role). What counts as success:

- the answer is **2xx**. Nothing else passes: an example that a rule refuses (422, 400) is wrong; one refused for
  the state it finds (404, 409, 412, 428) names state the seed and the earlier examples do not make (it must name
  the demo seed, or come after the example that creates what it needs); one refused for its token (401, 403)
  belongs to a route whose roles the document does not say (`x-yimen-roles`, from `require_roles`);
- an example the test cannot send at all (a path parameter with neither an example nor a value an earlier
  example created, a required header or query parameter without an example) is a failure too: the document
  shows something no one can try.

Examples are sent in document order, service by service (catalog, identity, datashare, intake, workflow,
efficacy, notify), so an example may use what an earlier one created: after a successful `POST …/applications`
its `id` fills `{application_id}` (likewise any collection: `…/consultations` → `{consultation_id}`). A path
parameter no example created is read as a front end would: the first of the collection the document lists
(`{task_id}` → `GET …/tasks`); what another signed-in caller created comes after the caller's own list (a
clerk's `{application_id}` is the first of its queue). Ids and one-time codes the platform issues cannot be written in an example: a
body field naming one (`application_id`, `slot_id`, `claim_code` …) is filled with what an earlier answer
issued, as a path parameter is. A parameter showing several examples is sent once with each.

Some examples need state no earlier example makes (a result waiting at the counter, a joint review at a given
stage): the seed prepares it through the API, one object per example of the operation, and `world.prepared`
names, per operation (`"POST /intake/v1/applications/{application_id}/deliver"`), what each example in turn takes:
its path parameters and who sends it. These come before any other filling; what such an example answers
(another caller's application, say) was set aside for it alone and fills nothing later.

Who sends it: the caller the seed prepared for it; else a token of a role the operation admits (`x-yimen-roles`;
`seed.py` has one account per caller kind), else the citizen; an example that changes a password
(`current_password`) is sent by the account an earlier example created with that password.

**Structure, across all documents**: every operation has a typed 2xx body (no empty or untyped object); every
operation states its security (public routes `security: []`, token routes a bearer scheme) and behaves so (a
token route answers 401 without a token, a public one does not); every `ETag`, `Location`,
`Idempotent-Replayed` and `Retry-After` an answer carries is declared on that response, a route taking an
`Idempotency-Key` declares `Idempotent-Replayed`, a create (201) declares its `ETag`; `If-Match` is required
wherever its absence is answered 428; every `$ref` resolves.

Each test fails with the whole list of offending operations and why, not the first."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from shared.settings import SERVICES

pytestmark = pytest.mark.e2e

METHODS = ("get", "put", "post", "patch", "delete")
#: The order examples are sent in: what a later service's example needs is made by an earlier one.
ORDER = ["catalog", "identity", "datashare", "intake", "workflow", "efficacy", "notify"]
DECLARED = ("ETag", "Location", "Idempotent-Replayed", "Retry-After")
#: Which of the roles an operation admits the test signs in with (the first it holds).
PREFERENCE = ("admin", "catalog_editor", "supervisor", "org_agent", "window_clerk", "department_reviewer",
              "department_system", "service", "citizen")
#: Body fields holding something the platform issues once (not an id): filled from the answer that issued it.
ISSUED = ("claim_code",)
SINGULAR = {"people": "person", "staff": "staff", "delegations": "delegation", "appointment-slots": "slot",
            "certificates": "certificate", "materials": "attachment", "commitments": "attachment",
            "supervision": "item", "queue": "application"}


def operations(docs: dict[str, dict[str, Any]]):
    for service in [s for s in ORDER if s in docs] + [s for s in docs if s not in ORDER]:
        for path, item in docs[service].get("paths", {}).items():
            for method in METHODS:
                if method in item:
                    yield service, method, path, item[method]


def resolve(doc: dict[str, Any], node: Any) -> Any:
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 20:
        node = doc.get("components", {}).get("schemas", {}).get(node["$ref"].rsplit("/", 1)[-1], {})
        seen += 1
    return node


def parameters(doc: dict[str, Any], path: str, op: dict[str, Any]) -> list[dict[str, Any]]:
    item = doc["paths"][path]
    return [resolve(doc, p) for p in [*item.get("parameters", []), *op.get("parameters", [])]]


def parameter_examples(p: dict[str, Any]) -> list[Any]:
    schema = p.get("schema", {})
    if "example" in p:
        return [p["example"]]
    if isinstance(p.get("examples"), dict) and p["examples"]:
        return [ex.get("value") for ex in p["examples"].values()]
    if schema.get("examples"):
        return list(schema["examples"])
    if "example" in schema:
        return [schema["example"]]
    return []


def parameter_example(p: dict[str, Any], variant: int = 0) -> Any:
    examples = parameter_examples(p)
    return examples[min(variant, len(examples) - 1)] if examples else None


def body_examples(doc: dict[str, Any], op: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(content type, label, value) of every request-body example the operation shows."""
    out = []
    for ctype, media in op.get("requestBody", {}).get("content", {}).items():
        if "example" in media:
            out.append((ctype, "example", media["example"]))
        for name, ex in (media.get("examples") or {}).items():
            if isinstance(ex, dict) and "value" in ex:
                out.append((ctype, f"examples.{name}", ex["value"]))
        schema = resolve(doc, media.get("schema", {}))
        for i, value in enumerate(schema.get("examples") or []):
            out.append((ctype, f"schema example {i + 1}", value))
        if "example" in schema:
            out.append((ctype, "schema example", schema["example"]))
        if not out and (composed := from_field_examples(doc, schema)) is not None:
            # What Swagger UI shows as the example when the body has none: one built from its fields' examples.
            out.append((ctype, "built from the fields' examples", composed))
    return out


def from_field_examples(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    props = schema.get("properties") or {}
    values = {}
    for name, prop in props.items():
        prop = resolve(doc, prop)
        examples = prop.get("examples") or ([prop["example"]] if "example" in prop else [])
        if examples:
            values[name] = examples[0]
    if not values:
        return None
    missing = [n for n in schema.get("required", []) if n not in values]
    return values if not missing else {"__missing__": missing}


def token_for(op: dict[str, Any], world, value: Any = None) -> tuple[str | None, str]:
    """The token to send and which role it is: none for a public operation."""
    security = op.get("security")
    if security == [] or (security and {} in security and not op.get("x-yimen-roles")):
        return None, "public"
    if isinstance(value, dict) and "current_password" in value:
        login = world.credentials.get(value["current_password"])
        if login is None:
            return None, "no earlier example created an account with the example's current_password"
        r = world.http.post("/identity/v1/token", data={"grant_type": "password", "username": login,
                                                         "password": value["current_password"]})
        return (r.json()["access_token"], f"{login}, whose password the example names") if r.status_code == 200 \
            else (None, f"signing in as {login} with the example's current_password: {r.status_code}")
    roles = op.get("x-yimen-roles") or ["citizen"]
    for role in PREFERENCE:
        if role in roles and role in world.tokens:
            return world.tokens[role], role
    return None, f"no test account holds any of {roles}"


def fill_path(path: str, params: list[dict[str, Any]], world, service: str = "", headers: Any = None,
              variant: int = 0, role: str = "", given: dict[str, str] | None = None) -> tuple[str | None, str]:
    """The path with its parameters filled (what the seed prepared for this example, else their examples, else
    what earlier examples created, else the first of the collection the document lists). What another signed-in
    caller created comes after the caller's own list: a window clerk acts on an application of its queue, not on
    a citizen's draft."""
    out = path
    for p in params:
        if p.get("in") != "path":
            continue
        value = (given or {}).get(p["name"])
        if value is None:
            value = parameter_example(p, variant)
        if value is None and world.creators.get(p["name"]) not in (None, "public", role):
            value = first_listed(world, service, p["name"], headers or {})
        if value is None:
            value = world.known.get(p["name"])
        if value is None:
            value = first_listed(world, service, p["name"], headers or {})
        if value is None:
            return None, f"path parameter {{{p['name']}}} has no example and no earlier example created one"
        out = out.replace("{" + p["name"] + "}", str(value))
    return out, ""


def first_listed(world, service: str, name: str, headers: dict[str, str]) -> str | None:
    """`{task_id}`: the id of the first item `GET …/tasks` lists (a path of the same document, its own parameters
    filled as known, its query parameters as their examples show), as a front end finds one."""
    if not name.endswith("_id") or service not in world.docs:
        return None
    stem = name[:-3].replace("_", "-")
    plurals = {k for k, v in SINGULAR.items() if v == name[:-3]} | {stem + "s"}
    for path, item in world.docs[service]["paths"].items():
        if "get" not in item or path.rstrip("/").rsplit("/", 1)[-1] not in plurals:
            continue
        url = re.sub(r"\{([^}]+)\}", lambda m: str(world.known.get(m.group(1), "{?}")), path)
        if "{?}" in url:
            continue
        query = {p["name"]: parameter_example(p) for p in parameters(world.docs[service], path, item["get"])
                 if p.get("in") == "query" and parameter_example(p) is not None}
        r = world.http.get(url, headers=headers, params=query)  # as its examples show (`?state=open&department=…`)
        if r.status_code != 200:
            continue
        body = r.json()
        rows = body.get("items") if isinstance(body, dict) else body
        if isinstance(rows, list) and rows and isinstance(rows[0], dict) and "id" in rows[0]:
            return str(rows[0]["id"])
    return None


def fill_body(value: Any, world) -> Any:
    """An example's ids and one-time codes replaced by what earlier answers issued (top-level fields)."""
    if not isinstance(value, dict):
        return value
    return {k: (world.known[k] if k in world.known and (k.endswith("_id") or k in ISSUED) else v)
            for k, v in value.items()}


def remember(world, path: str, body: Any) -> None:
    """What a successful create made, for the path parameters of later examples."""
    if not isinstance(body, dict):
        return
    segment = path.rstrip("/").rsplit("/", 1)[-1]
    if "{" in segment:
        return
    name = SINGULAR.get(segment, segment[:-1] if segment.endswith("s") else segment).replace("-", "_")
    if "id" in body:
        world.known[f"{name}_id"] = str(body["id"])
    for key, value in body.items():  # what the answer names besides itself (a walk-in's application, a task's)
        if isinstance(value, dict) and "id" in value:
            world.known[f"{key}_id"] = str(value["id"])
        elif key in path_names(world) and isinstance(value, str) and value:  # an id a path takes
            world.known[key] = value
    if "number" in body:
        world.known["number"] = str(body["number"])
    if "code" in body:
        world.known.setdefault("code", str(body["code"]))
    for name in ISSUED:
        if body.get(name):
            world.known[name] = str(body[name])


def path_names(world) -> set[str]:
    return {m for doc in world.docs.values() for path in doc.get("paths", {}) for m in re.findall(r"\{([^}]+)\}", path)}


def remember_credentials(world, value: Any) -> None:
    """An example that created an account with a password: who signs in with it (for a password change)."""
    if isinstance(value, dict) and value.get("password"):
        login = value.get("username") or value.get("id_number")
        if login:
            world.credentials[value["password"]] = str(login)


def send(world, service: str, method: str, path: str, op: dict[str, Any], ctype: str | None, value: Any,
         variant: int = 0):
    """One request as the document describes it. Returns (response or None, why it could not be sent)."""
    doc = world.docs[service]
    params = parameters(doc, path, op)
    queue = world.prepared.get(f"{method.upper()} {path}")
    given = dict(queue.pop(0)) if queue else {}  # what the seed prepared for this example, in turn
    caller = given.pop("caller", None)
    token, role = (world.tokens[caller], caller) if caller else token_for(op, world, value)
    if token is None and role != "public":
        return None, role
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url, why = fill_path(path, params, world, service, headers, variant, role, given)
    if url is None:
        return None, why
    value = fill_body(value, world)
    query: dict[str, Any] = {}
    for p in params:
        where, name = p.get("in"), p["name"]
        example = parameter_example(p, variant)
        if where == "query" and example is not None:
            query[name] = example
        elif where == "query" and p.get("required"):
            return None, f"required query parameter {name} has no example"
        elif where == "header":
            if name.lower() == "idempotency-key":
                headers[name] = uuid.uuid4().hex
            elif name.lower() == "if-match":
                if p.get("required"):  # the current version, as a front end would send it
                    current = world.http.get(url, headers={k: v for k, v in headers.items() if k == "Authorization"})
                    if "etag" not in current.headers:
                        return None, f"If-Match is required but GET {url} gives no ETag ({current.status_code})"
                    headers[name] = current.headers["etag"]
            elif example is not None:
                headers[name] = str(example)
            elif p.get("required"):
                return None, f"required header {name} has no example"
    kwargs: dict[str, Any] = {"headers": headers, "params": query}
    if ctype is not None:
        if ctype.endswith("json"):
            kwargs["json"] = value
        elif ctype.startswith("text/") and isinstance(value, str):
            kwargs["content"] = value.encode()
            headers["Content-Type"] = ctype
        else:
            return None, f"the test does not send {ctype} examples; show a JSON or text example"
    return world.http.request(method.upper(), url, **kwargs), f"as {role}"


def verdict(status: int) -> str:
    if status in (400, 422):
        return "REJECTED: breaks a rule"
    if status in (401, 403):
        return "REFUSED for its token: say the route's roles (require_roles → x-yimen-roles)"
    if status in (404, 409, 410, 412, 428):
        return "NEEDS STATE the seed and earlier examples do not make"
    if status >= 500:
        return "SERVER ERROR"
    return "not 2xx"


def headers_declared(op: dict[str, Any], status: int, response) -> list[str]:
    declared = {h.lower() for h in (op.get("responses", {}).get(str(status), {}).get("headers") or {})}
    return [h for h in DECLARED if h.lower() in response.headers and h.lower() not in declared]


def test_every_request_example_succeeds_on_the_seeded_platform(world):
    failures: list[str] = []
    sent = 0
    for service, method, path, op in operations(world.docs):
        doc = world.docs[service]
        examples = body_examples(doc, op)
        variants = max([len(parameter_examples(p)) for p in parameters(doc, path, op)] or [0])
        if not examples and not variants:
            continue
        sends = [(c, label, v, i) for c, label, v in examples or [(None, "parameter examples", None)]
                 for i in range(max(variants, 1))]
        for ctype, label, value, variant in sends:
            where = f"{method.upper()} {path} [{label}{f', parameter example {variant + 1}' if variant else ''}]"
            if isinstance(value, dict) and "__missing__" in value:
                failures.append(f"{where}: NOT SENDABLE: fields have examples but the required "
                                f"{value['__missing__']} have none (give the body a whole example)")
                continue
            prepared = bool(world.prepared.get(f"{method.upper()} {path}"))  # this send takes what was set aside
            response, how = send(world, service, method, path, op, ctype, value, variant)
            if response is None:
                failures.append(f"{where}: NOT SENDABLE: {how}")
                continue
            sent += 1
            if response.status_code == 428:
                failures.append(f"{where}: 428 without If-Match, but If-Match is not declared required")
            if not 200 <= response.status_code < 300:
                failures.append(f"{where}: {response.status_code} {verdict(response.status_code)} ({how}): "
                                f"{response.text[:300]}")
                continue
            for header in headers_declared(op, response.status_code, response):
                failures.append(f"{where}: answers {response.status_code} with {header} but does not declare it")
            remember_credentials(world, value)
            if "json" in response.headers.get("content-type", "") and not prepared:
                before = dict(world.known)
                remember(world, path, response.json())
                world.creators.update({k: how.removeprefix("as ") for k, v in world.known.items()
                                       if before.get(k) != v})
    assert sent, "no example was sent"
    assert not failures, f"{len(failures)} of the documents' examples fail ({sent} sent):\n" + "\n".join(failures)


def _typed(doc: dict[str, Any], schema: Any, depth: int = 0) -> bool:
    schema = resolve(doc, schema)
    if not isinstance(schema, dict) or not schema or depth > 8:
        return bool(schema) and depth <= 8
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return all(_typed(doc, s, depth + 1) for s in schema[key])
    kind = schema.get("type")
    if kind == "array":
        return "items" in schema and _typed(doc, schema["items"], depth + 1)
    if kind == "object" or "properties" in schema:
        extra = schema.get("additionalProperties")
        return bool(schema.get("properties")) or (isinstance(extra, dict) and _typed(doc, extra, depth + 1))
    return kind is not None or "enum" in schema or "const" in schema


def test_every_operation_says_what_it_returns(world):
    failures = []
    for service, method, path, op in operations(world.docs):
        doc = world.docs[service]
        ok = {c: r for c, r in op.get("responses", {}).items() if c.startswith("2")}
        where = f"{service}: {method.upper()} {path}"
        if not ok:
            failures.append(f"{where}: declares no 2xx response")
        for code, resp in ok.items():
            for ctype, media in (resp.get("content") or {}).items():
                if "json" in ctype and not _typed(doc, media.get("schema")):
                    failures.append(f"{where}: {code} {ctype} is an untyped schema {media.get('schema')!r}")
            if code not in ("202", "204") and not resp.get("content"):
                failures.append(f"{where}: {code} declares no body")
    assert not failures, f"{len(failures)} operations do not say what they return:\n" + "\n".join(failures)


def test_every_operation_declares_its_security_and_behaves_so(world):
    failures = []
    for service, method, path, op in operations(world.docs):
        where = f"{service}: {method.upper()} {path}"
        security = op.get("security")
        if security is None:
            failures.append(f"{where}: states no security (public routes say `security: []`)")
            continue
        schemes = {k for s in security for k in s}
        declared = set(world.docs[service].get("components", {}).get("securitySchemes", {}))
        if security and not schemes <= {"HTTPBearer", "StandardWebhooks"} | declared:
            failures.append(f"{where}: unknown security schemes {sorted(schemes)}")
        url = re.sub(r"\{[^}]+\}", lambda m: world.known.get(m.group(0)[1:-1], "x1"), path)
        r = world.http.request(method.upper(), url)
        # Without any credential (no token, no signature) a route that needs one answers 401.
        needs_token = bool(security) and {} not in security
        if needs_token and r.status_code != 401:
            failures.append(f"{where}: documented as needing a token, answers {r.status_code} without one")
        if not needs_token and r.status_code == 401:
            failures.append(f"{where}: documented as public ({security}), answers 401 without a token: "
                            f"{r.text[:160]}")
    assert not failures, f"{len(failures)} operations misstate their security:\n" + "\n".join(failures)


def test_headers_and_preconditions_are_declared(world):
    failures = []
    for service, method, path, op in operations(world.docs):
        doc = world.docs[service]
        where = f"{service}: {method.upper()} {path}"
        params = {p["name"].lower(): p for p in parameters(doc, path, op) if p.get("in") == "header"}
        responses = op.get("responses", {})
        ok = {c: r for c, r in responses.items() if c.startswith("2")}
        if "idempotency-key" in params and not any(
                "idempotent-replayed" in {h.lower() for h in (r.get("headers") or {})} for r in ok.values()):
            failures.append(f"{where}: takes Idempotency-Key but declares no Idempotent-Replayed header")
        if "201" in responses and "etag" not in {h.lower() for h in (responses["201"].get("headers") or {})}:
            failures.append(f"{where}: a create (201) that declares no ETag")
        if_match = params.get("if-match")
        if "428" in responses and not (if_match and if_match.get("required")):
            failures.append(f"{where}: answers 428 without If-Match, but If-Match is not a required header")
        if "429" in responses and "retry-after" not in {h.lower() for h in (responses["429"].get("headers") or {})}:
            failures.append(f"{where}: 429 declared without its Retry-After header")
    assert not failures, f"{len(failures)} header declarations are missing:\n" + "\n".join(failures)


def test_every_reference_resolves(world):
    failures = []
    for service, doc in world.docs.items():
        names = set(doc.get("components", {}).get("schemas", {}))
        text = repr(doc)
        for ref in sorted(set(re.findall(r"'#/components/schemas/([^']+)'", text))):
            if ref not in names:
                failures.append(f"{service}: $ref #/components/schemas/{ref} names no schema")
    assert not failures, "\n".join(failures)


def test_every_service_has_a_document(world):
    assert set(world.docs) == set(SERVICES)
