"""Real services tests start (Docker, a registry, Prometheus) and helpers around them."""
