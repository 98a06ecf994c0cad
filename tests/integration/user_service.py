"""A user's own service, as a team adds one: its own templates, pods reading a ConfigMap and a Secret."""

from __future__ import annotations

from pathlib import Path

from orchestrator.config import Project
from tests.helpers import copy_estate

IMAGE = "registry.addtocloud.local/addtocloud/greeter:1"

PIPELINE = """description: a user's own service; its pods read a ConfigMap and a Secret
templates:
  - k8s/serviceaccount.yaml.j2
  - k8s/service.yaml.j2
  - greeter/config.yaml.j2
  - greeter/admin-service.yaml.j2
  - greeter/deployment.yaml.j2
  - istio/destinationrule.yaml.j2
  - istio/virtualservice.yaml.j2
values:
  port: 8080
  replicas: 2
  greeting: hello
  apiKey: first-key
  admin: false
  sim: {errorRate: 0}
strategy:
  canary:
    steps:
%s
"""
GATED = """      - setWeight: 50
      - pause: {duration: 0.3s}
      - analysis:
          templates:
            - templateName: request-success-rate"""
FAST = """      - setWeight: 50
      - pause: {duration: 0.3s}"""

CONFIG = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ service }}-config
  namespace: {{ namespace }}
  labels:
{{ labels | to_yaml | indent(4, true) }}
data:
  greeting: {{ values.greeting | tojson }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ service }}-keys
  namespace: {{ namespace }}
  labels:
{{ labels | to_yaml | indent(4, true) }}
type: Opaque
stringData:
  API_KEY: {{ values.apiKey | tojson }}
"""
ADMIN_SERVICE = """{% if values.admin %}apiVersion: v1
kind: Service
metadata:
  name: {{ service }}-admin
  namespace: {{ namespace }}
  labels:
{{ labels | to_yaml | indent(4, true) }}
spec:
  selector:
    app.kubernetes.io/name: {{ service }}
  ports:
    - {name: admin, port: 9090, targetPort: 9090, protocol: TCP}
{% endif %}"""
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ service }}
  namespace: {{ namespace }}
  labels:
{{ labels | to_yaml | indent(4, true) }}
spec:
  replicas: {{ values.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ service }}
      app.kubernetes.io/instance: {{ service }}
  template:
    metadata:
      labels:
{{ labels | to_yaml | indent(8, true) }}
        version: {{ version }}
      annotations:
        sim.addtocloud.io/error-rate: {{ values.sim.errorRate | string | tojson }}
    spec:
      serviceAccountName: {{ service }}
      containers:
        - name: {{ service }}
          image: {{ image | tojson }}
          ports:
            - {name: http, containerPort: {{ values.port }}, protocol: TCP}
          envFrom:
            - secretRef: {name: {{ service }}-keys}
          env:
            - name: GREETING
              valueFrom:
                configMapKeyRef: {name: {{ service }}-config, key: greeting}
          volumeMounts:
            - {name: config, mountPath: /etc/greeter}
      volumes:
        - name: config
          configMap: {name: {{ service }}-config}
"""


def greeter_estate(root: Path, steps: str) -> Project:
    copy_estate(root)
    (root / "pipelines" / "greeter.yaml").write_text(PIPELINE % steps)
    templates = root / "templates" / "greeter"
    templates.mkdir()
    (templates / "config.yaml.j2").write_text(CONFIG)
    (templates / "admin-service.yaml.j2").write_text(ADMIN_SERVICE)
    (templates / "deployment.yaml.j2").write_text(DEPLOYMENT)
    return Project(root)
