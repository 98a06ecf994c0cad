"""The CLI as a user runs it, recorded: every run's output kept to search it for secrets afterwards."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import select

from orchestrator.store import db
from orchestrator.store.models import ApiToken, User
from tests.services.cli import run_orchestrator


class Cli:
    """The CLI in a subprocess with one state folder and database; a token per call when given."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env

    def __call__(
        self, *args: str, token: str | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "ORCHESTRATOR_TOKEN": token or ""}
        return run_orchestrator(*args, cwd=self.cwd, env=env, input=input)

    def json(self, *args: str, token: str | None = None) -> Any:
        result = self(*args, "-o", "json", token=token)
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    def token_for(self, *args: str, token: str | None = None) -> str:
        result = self("tokens", "create", *args, token=token)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()


class Recorder:
    """Runs the CLI and keeps everything each run printed, to search it for secrets afterwards."""

    def __init__(self, tmp_path: Path, database_url: str, env: dict[str, str] | None = None) -> None:
        self.cwd = tmp_path
        self.env = {
            "ORCHESTRATOR_STATE_DIR": str(tmp_path / "state"),
            **(env or {}),
            "ORCHESTRATOR_DATABASE_URL": database_url,
            "ORCHESTRATOR_LOG_LEVEL": "debug",
            "ORCHESTRATOR_LOG_FORMAT": "json",
        }
        self.runs: list[tuple[tuple[str, ...], subprocess.CompletedProcess[str]]] = []
        self.issued: dict[str, int] = {}  # token -> index of the one run allowed to print it

    def __call__(
        self, *args: str, token: str | None = None, input: str | None = None, code: int = 0
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "ORCHESTRATOR_TOKEN": token or ""}
        result = run_orchestrator(*args, cwd=self.cwd, env=env, input=input)
        self.runs.append((args, result))
        assert result.returncode == code, f"{args}: {result.stdout}{result.stderr}"
        return result

    def json(self, *args: str, token: str | None = None) -> Any:
        return json.loads(self(*args, "-o", "json", token=token).stdout)

    @property
    def saved_login(self) -> Path:
        """The file `login` and the first `users create` write."""
        return Path(self.env["ORCHESTRATOR_STATE_DIR"]) / "token"

    def issue(
        self,
        *args: str,
        token: str | None = None,
        command: tuple[str, ...] = ("tokens", "create"),
        input: str | None = None,
    ) -> str:
        """Run a command that prints a token (last on stdout), remembering which run was allowed to."""
        result = self(*command, *args, token=token, input=input)
        secret = result.stdout.strip().splitlines()[-1]
        assert secret.startswith("atc_"), result.stdout
        self.issued[secret] = len(self.runs) - 1
        return secret

    def assert_no_secrets_leaked(self, *passwords: str) -> None:
        """No password, password hash or token hash in anything any run printed; a token only on the stdout
        of the run that issued it, once; and debug logging was on, so the logs were searched too."""
        never = [*passwords, *stored_hashes(self.env["ORCHESTRATOR_DATABASE_URL"])]
        tokens: dict[str, int | None] = dict(self.issued)
        saved = self.saved_login
        if saved.exists():
            tokens.setdefault(saved.read_text().strip(), None)
        for index, (args, result) in enumerate(self.runs):
            for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
                for secret in never:
                    assert secret not in text, f"{args} printed a password or hash on {stream}"
                for token, allowed_run in tokens.items():
                    if token in text:
                        # Only the command that issued a token prints it, once, on stdout.
                        where = (index, stream)
                        assert where == (allowed_run, "stdout"), f"{args} printed a token on {stream}"
                        assert text.count(token) == 1
        assert any('"level": "debug"' in result.stderr for _, result in self.runs), "debug logging was not on"


def stored_hashes(database_url: str) -> list[str]:
    """Every password hash and token hash the database holds."""
    engine = db.make_engine(database_url)
    try:
        with db.session_factory(engine)() as session:
            hashes = [h for h in session.scalars(select(User.password_hash)) if h]
            return hashes + list(session.scalars(select(ApiToken.token_hash)))
    finally:
        engine.dispose()
