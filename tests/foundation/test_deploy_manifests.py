"""The deployment files parse and name every service with its probes."""

from __future__ import annotations

import yaml

from shared.settings import ROOT, SERVICE_PORTS


def test_compose_runs_nats_postgres_every_service_and_the_gateway():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    names = set(compose["services"])
    assert {"nats", "postgres", "gateway", "simulator", *SERVICE_PORTS} <= names
    for s in SERVICE_PORTS:
        svc = compose["services"][s]
        assert svc["command"] == [s]
        assert f"YIMEN_{s.upper()}_DATABASE_URL" in svc["environment"]
        assert f"/{s}/readyz" in " ".join(svc["healthcheck"]["test"])
    assert "-js" in compose["services"]["nats"]["command"]
    assert "/console/readyz" in " ".join(compose["services"]["console"]["healthcheck"]["test"])


def test_kubernetes_has_a_three_node_jetstream_and_probed_deployments():
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "yimen.yaml").read_text()) if d]
    by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    nats = by[("StatefulSet", "nats")]
    assert nats["spec"]["replicas"] == 3
    conf = by[("ConfigMap", "nats-config")]["data"]["nats.conf"]
    assert "jetstream" in conf and conf.count("nats://nats-") == 3
    for s, port in SERVICE_PORTS.items():
        c = by[("Deployment", s)]["spec"]["template"]["spec"]["containers"][0]
        assert c["readinessProbe"]["httpGet"] == {"path": f"/{s}/readyz", "port": port}
        assert c["livenessProbe"]["httpGet"] == {"path": f"/{s}/healthz", "port": port}
        assert ("Service", s) in by
    assert ("Job", "yimen-migrate") in by
    console = by[("Deployment", "console")]["spec"]["template"]["spec"]["containers"][0]
    assert console["readinessProbe"]["httpGet"] == {"path": "/console/readyz", "port": 8180}
    # The Ingress sends everything to the gateway, which routes /console like every prefix.
    backends = {p["backend"]["service"]["name"] for p in by[("Ingress", "yimen")]["spec"]["rules"][0]["http"]["paths"]}
    assert backends == {"gateway"} and ("PodDisruptionBudget", "console") in by
    assert "YIMEN_CONSOLE_URL" in by[("ConfigMap", "yimen-config")]["data"]


def test_dockerfile_builds_one_image_whose_argument_picks_the_process():
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "deploy.entrypoint" in text and "python:3.11" in text


# ---- the bus's accounts (deploy/natsconfig.py) ---------------------------------------------------------------


def _k8s() -> dict:
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "yimen.yaml").read_text()) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_compose_gives_nats_the_accounts_and_every_service_its_own_bus_password(tmp_path):
    import re

    from deploy.natsconfig import env_name, write_bundle

    text = (ROOT / "deploy" / "compose.yaml").read_text()
    compose = yaml.safe_load(text)
    nats = compose["services"]["nats"]
    assert nats["command"][-2:] == ["-c", "/run/secrets/nats-auth"] and nats["secrets"] == ["nats-auth"]
    assert compose["secrets"]["nats-auth"]["file"] == "./secrets/nats/auth.conf"
    for s in SERVICE_PORTS:
        env = compose["services"][s]["environment"]
        assert env["YIMEN_NATS_USER"] == s
        assert env["YIMEN_NATS_PASSWORD"].startswith("${" + env_name(s) + ":?")  # required, never a default
    assert compose["services"]["simulator"]["environment"]["YIMEN_SIMULATOR_NATS_CREDENTIALS"].startswith(
        "${YIMEN_SIMULATOR_NATS_CREDENTIALS:?")
    assert "YIMEN_NATS_PASSWORD" not in compose["services"]["gateway"]["environment"]
    # Every variable compose needs is in the env file the generator writes.
    bundle = write_bundle(tmp_path / "nats", bcrypt_cost=4)
    written = {line.split("=", 1)[0] for line in (tmp_path / "nats" / "nats.env").read_text().splitlines()}
    needed = set(re.findall(r"\$\{(YIMEN_(?:NATS_PASSWORD_\w+|SIMULATOR_NATS_CREDENTIALS))", text))
    assert needed and needed <= written
    assert bundle.auth_file.exists()


def test_kubernetes_mounts_the_accounts_into_nats_and_each_service_reads_its_own_password():
    by = _k8s()
    assert by[("ConfigMap", "nats-config")]["data"]["nats.conf"].rstrip().endswith("include auth.conf")
    volumes = by[("StatefulSet", "nats")]["spec"]["template"]["spec"]["volumes"]
    sources = next(v for v in volumes if v["name"] == "config")["projected"]["sources"]
    assert {"configMap": {"name": "nats-config"}} in sources
    assert {"secret": {"name": "yimen-nats-server", "items": [{"key": "auth.conf", "path": "auth.conf"}]}} in sources
    # The NATS pods never see a password: only the hashed auth.conf, from a secret of its own.
    assert not any(src.get("secret", {}).get("name") == "yimen-nats" for src in sources)
    for s in SERVICE_PORTS:
        env = {e["name"]: e for e in by[("Deployment", s)]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["YIMEN_NATS_USER"]["value"] == s
        assert env["YIMEN_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "yimen-nats", "key": s}


def test_the_deployments_nats_configuration_with_generated_accounts_is_valid_for_nats_server(tmp_path):
    """nats-server itself checks the Kubernetes config with the generated `auth.conf` beside it (as the
    projected volume puts it) and compose's flags with the secret."""
    import os
    import subprocess

    from deploy.natsconfig import write_bundle
    from shared.testing import nats_server_binary

    bundle = write_bundle(tmp_path / "bundle", bcrypt_cost=4)
    conf_dir = tmp_path / "etc-nats"
    conf_dir.mkdir()
    (conf_dir / "nats.conf").write_text(by_conf := _k8s()[("ConfigMap", "nats-config")]["data"]["nats.conf"])
    (conf_dir / "auth.conf").write_text(bundle.auth_file.read_text())
    env = {**os.environ, "POD_NAME": "nats-0"}
    k8s = subprocess.run([nats_server_binary(), "-c", str(conf_dir / "nats.conf"), "-t"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert k8s.returncode == 0, k8s.stderr + by_conf
    nats_args = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]["nats"]["command"]
    args = [str(bundle.auth_file) if a == "/run/secrets/nats-auth" else a for a in nats_args]
    args = [str(tmp_path / "data") if a == "/data" else a for a in args]
    compose = subprocess.run([nats_server_binary(), *args, "-t"], capture_output=True, text=True, timeout=30)
    assert compose.returncode == 0, compose.stderr


# ---- beyond one pod (issue 20): checked against the Kubernetes schemas, not only written ---------------------

#: The Kubernetes version the manifests are checked against (schemas bundled in kubernetes-validate: no network).
K8S_VERSION = "1.30.0"


def test_every_kubernetes_manifest_is_valid_against_the_schemas():
    import kubernetes_validate

    docs = list(_k8s().values())
    assert len(docs) > 40
    for doc in docs:
        # strict: a misspelt field (an unknown key) is an error, not silently ignored by the API server.
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_schema_check_catches_a_wrong_manifest():
    import kubernetes_validate
    import pytest

    pdb = dict(_k8s()[("PodDisruptionBudget", "intake")])
    wrong = {**pdb, "spec": {**pdb["spec"], "minAvailabel": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, K8S_VERSION, strict=True)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**pdb, "spec": {**pdb["spec"], "minAvailable": []}}, K8S_VERSION, strict=True)


def test_every_service_has_a_disruption_budget_a_cpu_autoscaler_and_three_copies_of_the_streams():
    by = _k8s()
    assert by[("ConfigMap", "yimen-config")]["data"]["YIMEN_NATS_STREAM_REPLICAS"] == "3"
    for s in (*SERVICE_PORTS, "gateway"):
        deployment = by[("Deployment", s)]
        assert deployment["spec"]["replicas"] >= 2
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        pdb = by[("PodDisruptionBudget", s)]["spec"]
        assert pdb["minAvailable"] == 1 and pdb["selector"]["matchLabels"].items() <= labels.items()
        hpa = by[("HorizontalPodAutoscaler", s)]["spec"]
        assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": s}
        assert hpa["minReplicas"] >= 2 and hpa["metrics"][0]["resource"]["name"] == "cpu"
        # An HPA on CPU utilisation needs a CPU request to measure against.
        assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
    assert by[("PodDisruptionBudget", "nats")]["spec"]["maxUnavailable"] == 1


def _allowed(by: dict, target_labels: dict[str, str]) -> list[dict]:
    """The `from` peers of every NetworkPolicy whose podSelector matches pods with `target_labels`."""
    peers = []
    for (kind, _name), doc in by.items():
        if kind != "NetworkPolicy":
            continue
        selector = doc["spec"]["podSelector"].get("matchLabels", {})
        if selector.items() <= target_labels.items():
            for rule in doc["spec"].get("ingress", []):
                peers += rule["from"]
    return peers


def test_network_policies_allow_only_gateway_to_services_and_services_to_nats_and_postgres():
    by = _k8s()
    deny = by[("NetworkPolicy", "default-deny-ingress")]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}  # nothing is reachable unless allowed below
    gateway = {"podSelector": {"matchLabels": {"app": "gateway"}}}
    services = {"podSelector": {"matchLabels": {"tier": "service"}}}
    for s in SERVICE_PORTS:
        labels = by[("Deployment", s)]["spec"]["template"]["metadata"]["labels"]
        assert labels == {"app": s, "tier": "service"}
        assert _allowed(by, labels) == [gateway], s
    nats = _allowed(by, {"app": "nats"})
    assert services in nats and {"podSelector": {"matchLabels": {"app": "nats"}}} in nats and gateway not in nats
    assert _allowed(by, {"app": "pgbouncer"}) == [services]
    assert _allowed(by, {"app": "postgres"}) == [{"podSelector": {"matchLabels": {"app": "pgbouncer"}}},
                                                 {"podSelector": {"matchLabels": {"app": "yimen-migrate"}}}]
    # The Ingress reaches the gateway alone, and services call one another through it.
    backends = {p["backend"]["service"]["name"] for r in by[("Ingress", "yimen")]["spec"]["rules"]
                for p in r["http"]["paths"]}
    assert backends == {"gateway"}
    config = by[("ConfigMap", "yimen-config")]["data"]
    assert set(__import__("json").loads(config["YIMEN_SERVICE_URLS"]).values()) == {"http://gateway"}


def test_nats_credentials_and_database_urls_come_from_secrets():
    by = _k8s()
    for s in SERVICE_PORTS:
        env = {e["name"]: e for e in by[("Deployment", s)]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["YIMEN_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "yimen-nats", "key": s}
        assert env[f"YIMEN_{s.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "yimen-secrets"
    bouncer = by[("Deployment", "pgbouncer")]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in bouncer["env"]}
    assert env["POOL_MODE"]["value"] == "transaction"
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "yimen-secrets"
