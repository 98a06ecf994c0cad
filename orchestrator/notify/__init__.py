"""Notifications and GitHub deployment statuses: the notifier that tails the audit trail (`notifier.py`),
what each phase change means to a destination (`triggers.py`), what is said (`facts.py`, `slack.py`,
`webhook.py`) and how it is sent (`send.py`, `destinations.py`)."""
