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
    paths = {p["path"] for p in by[("Ingress", "yimen")]["spec"]["rules"][0]["http"]["paths"]}
    assert "/console" in paths


def test_dockerfile_builds_one_image_whose_argument_picks_the_process():
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "deploy.entrypoint" in text and "python:3.11" in text
