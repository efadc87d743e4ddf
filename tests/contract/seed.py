"""The state every request example in the OpenAPI documents may rely on (issue 18: "examples can never rot").

A front-end developer reads an example and sends it to a platform that runs `make run` and `make demo`; the test
(`test_openapi_examples.py`) does the same on a fresh platform. So an example may name:

- **the demo catalogue** (`services/catalog/demo/`, loaded on an empty database): its items, departments
  (`LD-SCJGJ`, `LD-WJJ` …), service points (`LD-CENTRE`, `LD-LC` …), life events, certificate types, form
  fields and material codes;
- **the base registries below**, which the test imports first (as the public-security bureau and the market
  regulator do; `make demo` imports its own people the same way);
- **what an earlier example of the same document created**, in document order: the people example registers
  王芳, the organisation example registers 李明's shop, the agent example appoints 王芳 …

Person tokens are 李明's: the test registers him (with a password of its own) before the examples run, so an
example that registers a person names someone else (王芳). Staff tokens hold one role each (`x-yimen-roles`
says which route takes which); department staff are of `STAFF_DEPARTMENT`, clerks of `STAFF_POINT`.

Ids the platform issues (an application's, a task's) cannot be written in an example: the test fills such a path
parameter with what the last successful example of that collection created (`POST …/applications` →
`application_id`), else with the parameter's own example."""

from __future__ import annotations

#: 李明 signs in as "the citizen"; 王芳 is registered by the people example; 黄伯 is the walk-in.
POPULATION = [
    {"id_number": "445381199001011230", "name": "李明", "address": "罗定市罗城街道兴华路1号"},
    {"id_number": "445381199202022227", "name": "王芳", "address": "罗定市罗城街道龙华路2号"},
    {"id_number": "445381195203041237", "name": "黄伯", "address": "罗定市素龙街道岗咀村"},
]
CITIZEN = POPULATION[0]

#: 李明's shop (a 个体工商户), whose legal representative he is.
LEGAL_PERSONS = [
    {"credit_code": "92445381MA4W00000P", "name": "罗定市一味餐饮店", "legal_representative": "李明",
     "legal_representative_id": "445381199001011230", "entity_type": "个体工商户", "status": "存续"},
    {"credit_code": "91445381MA4W00000T", "name": "罗定市好味道餐饮有限公司", "legal_representative": "李明",
     "legal_representative_id": "445381199001011230", "entity_type": "有限责任公司", "status": "存续"},
]

STAFF_DEPARTMENT = "LD-SCJGJ"
STAFF_POINT = "LD-CENTRE"
