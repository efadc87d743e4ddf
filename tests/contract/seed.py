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
says which route takes which); department staff are of `STAFF_DEPARTMENT`, clerks of `STAFF_POINT`. One account
per other caller kind: the department system of `STAFF_DEPARTMENT` (`department_system`), identity's own service
token (`service`, the only caller of the registry matches), and 赵强, the agent of 李明's company
(`org_agent`, `ORG_AGENT`). An example that changes a password is sent by the account an earlier example created
with that password (the people example's 王芳). `LOCKABLE` is an account the lock example may lock.

Ids the platform issues (an application's, a task's) cannot be written in an example: the test fills such a path
parameter with what the last successful example of that collection created (`POST …/applications` →
`application_id`), else with the parameter's own example.

**Prepared per operation.** Some examples act on state no earlier example makes and that a fresh id of the
collection would not be in: a result waiting at the counter, a joint review at a given stage. For those the test
prepares (through the API, `conftest.py`) one object per example of the operation, in the examples' order, and
names who sends each: the hand-over examples get 李明's 临时居民身份证 (`COUNTER_ITEM`, an immediate item) whose
result waits at `STAFF_POINT`, one collected there (`pickup`) and one to post; the clerk's refusal and return
examples get the fire checks waiting in the queue (`QUEUE_ACTIONS`), which also lists results awaiting pickup; the joint-review examples get
竣工联合验收 (`JOINT_ITEM`) applications of 赵强's company, each one review, sent by the department system that
may act (the lead `JOINT_DEPARTMENTS[0]` schedules and consolidates, `OPINION_BY` gives each opinion)."""

from __future__ import annotations

#: 李明 signs in as "the citizen"; 王芳 is registered by the people example; 黄伯 is the walk-in.
POPULATION = [
    {"id_number": "445381199501011237", "name": "李明", "address": "罗定市罗城街道兴华路1号"},
    {"id_number": "445381199602022226", "name": "王芳", "address": "罗定市罗城街道龙华路2号"},
    {"id_number": "440100195203041233", "name": "黄伯", "address": "罗定市素龙街道岗咀村"},
    {"id_number": "445381199805051238", "name": "赵强", "address": "罗定市双东街道环保工业园"},
    {"id_number": "445381199808082347", "name": "陈静", "address": "罗定市附城街道"},
]
CITIZEN = POPULATION[0]

#: 李明's shop (a 个体工商户), whose legal representative he is.
LEGAL_PERSONS = [
    {"credit_code": "92445381MA4W00000P", "name": "罗定市一味餐饮店", "legal_representative": "李明",
     "legal_representative_id": "445381199501011237", "entity_type": "个体工商户", "status": "存续"},
    {"credit_code": "91445381MA4W00000T", "name": "罗定市好味道餐饮有限公司", "legal_representative": "李明",
     "legal_representative_id": "445381199501011237", "entity_type": "有限责任公司", "status": "存续"},
]

STAFF_DEPARTMENT = "LD-SCJGJ"
STAFF_POINT = "LD-CENTRE"
#: 食品经营许可 of the demo catalogue (罗定市市场监督管理局).
FOOD_PERMIT_ITEM = "11441781MB0000001A4010000030000"

#: 赵强 is appointed by 李明 as the agent of 罗定市好味道餐饮有限公司 and signs in for it (`org_agent`).
ORG_AGENT = POPULATION[3]
ORG_AGENT_COMPANY = LEGAL_PERSONS[1]
#: The person account the lock example locks (`{account_id}`).
LOCKABLE = POPULATION[4]
#: Accepted applications for 食品经营许可, each an open task of `STAFF_DEPARTMENT`: three decision examples and one
#: reassignment.
OPEN_TASKS = 4
#: Applications handed in and waiting for acceptance at `STAFF_POINT` (the clerk's queue): the fire check, which
#: is accepted at a window only; one for each of the clerk's examples that refuse or return a hand-in.
QUEUE_ACTIONS = ["not-accept", "return"]
IN_QUEUE = len(QUEUE_ACTIONS)
WINDOW_ITEM_DEPARTMENT = "LD-XFJ"
WINDOW_ITEM = "公众聚集场所投入使用、营业前消防安全检查"

#: 临时居民身份证申领 (LD-GAJ, decided at acceptance): one per hand-over example (`…/deliver`), in its order.
COUNTER_ITEM = "临时居民身份证申领"
HAND_OVERS = [{"method": "pickup", "service_point": STAFF_POINT},
              {"method": "post", "address": "罗定市罗城街道兴华路1号 李明 13800138000"}]
#: 竣工联合验收 of the demo catalogue: the lead, then the participating departments.
JOINT_ITEM = "竣工联合验收"
JOINT_DEPARTMENTS = ["LD-ZJJ", "LD-XFJ", "LD-STHJJ", "LD-WJJ"]
#: Who gives each opinion example (pass, pass with fire-safety conditions, the failed fire-engine access): the
#: fire brigade, on a scheduled review of its own each.
OPINION_BY = ["LD-XFJ", "LD-XFJ", "LD-XFJ"]
#: The opinions in before each consolidation example (the rest pass): all pass for the summary; a failed point
#: for the rejection, which needs one.
CONSOLIDATED = [{}, {"LD-ZJJ": {"verdict": "fail", "failed_points": [
    {"point": "主体结构", "reason": "主体结构与施工图设计文件不符"}]}}]
