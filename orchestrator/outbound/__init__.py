"""Requests the orchestrator sends to other people's endpoints, for the rollout engine (pre-rollout hooks)
and the notifier (notifications, post hooks) alike: one POST whose failure is said without its URL, the
HMAC signature of a body, and a pipeline hook's call."""
