"""The built-in Kubernetes API emulator ("sim" cluster target) with simulated Istio mesh traffic.

One process serves several simulated clusters (default aws, azure, gcp), each on its own HTTPS
endpoint, faithful enough for the real `kubernetes` client and `kubectl`. Modules, bottom up:

    resources, selectors, errors   what is served; label/field selectors; Status bodies
    store                          objects, resourceVersions, watch events (one lock per cluster)
    fields, apply, patch           field sets and server-side apply; merge/strategic/JSON patches
    validation, discovery, tables  defaults and 422s; /version, discovery, OpenAPI; kubectl tables
    api, watch                     the REST API of one cluster, independent of HTTP
    kubelet, controller            pods, replica sets and deployments advancing over time
    mesh, metrics                  traffic by VirtualService weights; Istio metrics for Prometheus
    faults, requestlog, control    fault injection, request log, the /_sim/ control API
    certs, kubeconfig, transport   TLS, kubeconfig, threaded HTTP(S) listeners
    server                         SimServer / SimCluster: the in-process API
    daemon, client                 background mode (`sim up`); load_running_sim, SimControl

`from orchestrator.sim.server import SimServer` for tests; `orchestrator.sim.client` for a sim
started with `orchestrator sim up`.
"""

# Here, not in server.py, so `orchestrator sim up --help` shows it without importing the emulator.
DEFAULT_CLUSTERS = ("aws", "azure", "gcp")
