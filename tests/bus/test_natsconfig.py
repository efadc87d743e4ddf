"""The accounts generator (deploy/natsconfig.py) without a server: who may publish what, per service and per
department, under a bus prefix; a new service is one entry in SERVICE_PORTS."""

from __future__ import annotations

import json

import bcrypt
import pytest

from deploy.natsconfig import durable_consumers, platform_users, write_bundle
from shared.settings import SERVICES


def by_name(users):  # type: ignore[no-untyped-def]
    return {u.name: u for u in users}


def test_each_service_publishes_its_own_events_and_pulls_only_its_own_durable_consumers():
    users = by_name(platform_users("p1"))
    for s in SERVICES:
        events = [x for x in users[s].publish if not x.startswith("$")]
        assert events == [f"p1.yimen.{s}.>", f"p1.yimen-dlq.{s}.>"]
        pulls = {x.rsplit(".", 1)[1] for x in users[s].publish if x.startswith("$JS.API.CONSUMER.MSG.NEXT.")}
        assert pulls == set(durable_consumers(s))
        assert all(x.startswith(("$JS.API.STREAM.", "$JS.API.CONSUMER.", "$JS.ACK.", "$JS.API.DIRECT.GET.KV_",
                                 "$JS.FC.KV_", "$KV.")) for x in users[s].publish if x.startswith("$"))
        # Its own rate-limit bucket, and no other service's.
        kv = [x for x in users[s].publish if x.startswith("$KV.")]
        assert kv == [f"$KV.YIMEN_P1_LIMITS_{s.upper()}.>"]
        assert all(f"KV_YIMEN_P1_LIMITS_{s.upper()}" in x for x in users[s].publish if "KV_" in x)
        assert f"_INBOX.{s}.>" in users[s].subscribe and "_INBOX.>" not in users[s].subscribe
    assert "workflow-department-decision" in durable_consumers("workflow")


def test_a_department_may_publish_one_subject_and_read_what_is_addressed_to_it():
    users = by_name(platform_users("", ["LD-WJJ", "LD-XFJ"]))
    assert users["LD-WJJ"].publish == ("yimen.department.LD-WJJ.decision",)
    assert set(users["LD-WJJ"].subscribe) == {"_INBOX.LD-WJJ.>", "yimen.department.LD-WJJ.>"}
    assert "LD-ZSJ" not in users  # only the departments asked for


def test_a_new_service_is_one_entry_and_a_name_clash_is_refused():
    users = by_name(platform_users("", [], services=(*SERVICES, "registry")))
    assert users["registry"].publish[:2] == ("yimen.registry.>", "yimen-dlq.registry.>")
    assert users["notify"].publish[:2] == ("yimen.notify.>", "yimen-dlq.notify.>")
    with pytest.raises(ValueError, match="workflow"):
        platform_users("", ["workflow"])


def test_the_bundle_keeps_passwords_and_gives_each_user_its_own(tmp_path):
    first = write_bundle(tmp_path / "a", departments=["LD-WJJ"], bcrypt_cost=4)
    assert len(set(first.passwords.values())) == len(first.passwords)
    again = write_bundle(tmp_path / "a", departments=["LD-WJJ", "LD-XFJ"], bcrypt_cost=4)
    assert {k: again.passwords[k] for k in first.passwords} == first.passwords and "LD-XFJ" in again.passwords
    assert json.loads((tmp_path / "a" / "departments.json").read_text()) == again.departments()
    assert (tmp_path / "a" / "users" / "workflow").read_text() == again.passwords["workflow"]
    conf = (tmp_path / "a" / "auth.conf").read_text()
    assert "no_auth_user" not in conf and conf.count('"user":') == len(again.users)
    # The servers' file holds bcrypt hashes, never a password; an unchanged password keeps its hash.
    assert not any(pw in conf for pw in again.passwords.values())
    entries = json.loads(conf.split("authorization: ", 1)[1])["users"]
    assert all(bcrypt.checkpw(again.passwords[e["user"]].encode(), e["password"].encode()) for e in entries)
    hashes = json.loads((tmp_path / "a" / "hashes.json").read_text())
    assert write_bundle(tmp_path / "a", departments=["LD-WJJ", "LD-XFJ"], bcrypt_cost=4) and json.loads(
        (tmp_path / "a" / "hashes.json").read_text()) == hashes


def test_a_service_reads_its_bus_account_from_the_environment_or_a_mounted_file(tmp_path, monkeypatch):
    from shared.settings import PlatformSettings

    for var in ("YIMEN_NATS_USER", "YIMEN_NATS_PASSWORD", "YIMEN_NATS_PASSWORD_FILE"):
        monkeypatch.delenv(var, raising=False)
    assert PlatformSettings(_env_file=None).nats_credentials() == {}  # an open server: no credentials
    secret = tmp_path / "workflow"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("YIMEN_NATS_USER", "workflow")
    monkeypatch.setenv("YIMEN_NATS_PASSWORD_FILE", str(secret))
    assert PlatformSettings().nats_credentials() == {"user": "workflow", "password": "s3cret"}
    monkeypatch.setenv("YIMEN_NATS_PASSWORD", "from-env")
    assert PlatformSettings().nats_credentials() == {"user": "workflow", "password": "from-env"}
