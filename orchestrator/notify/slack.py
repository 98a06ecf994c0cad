"""A Slack incoming-webhook message (Block Kit) for a phase change.

`text` is the fallback Slack shows in notifications and where blocks cannot be drawn; the blocks name the
service, environment, release, user and outcome, the failing gate and its value when a gate stopped the
rollout, and a button to the deployment's page when the orchestrator has a public URL.
"""

from __future__ import annotations

from typing import Any

from orchestrator.notify.facts import Facts

_EMOJI = {
    "Succeeded": ":white_check_mark:",
    "RolledBack": ":rewind:",
    "Aborted": ":octagonal_sign:",
    "Failed": ":x:",
    "Progressing": ":rocket:",
    "AwaitingApproval": ":hourglass_flowing_sand:",
    "AwaitingMerge": ":hourglass_flowing_sand:",
}


def _field(label: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{label}*\n{value}"}


def _escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as markup (links, mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(facts: Facts) -> dict[str, Any]:
    user = facts.actor or facts.deployed_by or "unknown"
    if facts.deployed_by and facts.actor and facts.actor != facts.deployed_by:
        user = f"{facts.actor} (deployed by {facts.deployed_by})"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": f"{':warning:' if facts.drift else _EMOJI.get(facts.phase, '')} {facts.service} "
                f"{'in' if facts.drift else 'to'} {facts.environment}: {facts.outcome}".strip()[:150],
            },
        },
        {
            "type": "section",
            "fields": [
                _field("Service", _escape(facts.service)),
                _field("Environment", _escape(facts.environment)),
                _field("Release", f"`{_escape(facts.image)}`\ncommit `{facts.git_commit[:12]}`"),
                _field("User", _escape(user)),
                _field("Outcome", facts.outcome if facts.drift else f"{facts.phase} ({facts.kind})"),
            ],
        },
    ]
    drift = facts.drift
    if drift is not None:
        listed = "\n".join(f"• {_escape(line)}" for line in drift.lines) or "(no detail)"
        text = f"*Drift in {_escape(drift.cluster)}* from commit `{drift.commit[:12]}`\n{listed}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
    gate = facts.gate
    if gate is not None:
        where = _escape(gate.phase)
        if gate.cluster:
            where += f" in {_escape(gate.cluster)}"
        if gate.step is not None:
            where += f", step {gate.step}"
        text = f"*Failing gate*\n`{_escape(gate.metric)}` = *{_escape(gate.figure)}* ({where})"
        if gate.message:
            text += f"\n{_escape(gate.message)}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if facts.message:
        context = {"type": "mrkdwn", "text": _escape(facts.message[:2000])}
        blocks.append({"type": "context", "elements": [context]})
    if facts.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open the deployment"},
                        "url": facts.link,
                    }
                ],
            }
        )
    return {"text": facts.summary, "blocks": blocks}
