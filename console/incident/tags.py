"""The note tags the post-mortem understands, defined once.

The export sorts tagged notes into its sections with these, and the note
prompt lists them, so an operator can discover every tag without the README.
Order is the report's order.
"""

from __future__ import annotations

from types import MappingProxyType

TAGS = MappingProxyType({
    "summary": "replaces the generated summary",
    "impact": "affected users, revenue (Impact)",
    "root-cause": "Root Cause",
    "decision": "Resolution, as a decision taken",
    "resolution": "Resolution",
    "prevention": "Prevention, as a follow-up",
    "lesson": "Lessons Learned",
    "went-well": "Lessons Learned, as what went well",
    "went-wrong": "Lessons Learned, as what went wrong",
    "action": "Action Items; @name is the owner",
    "finding": "the report's timeline",
})

# How a tagged note reads in the report's timeline.
TIMELINE_LABEL = MappingProxyType({
    "summary": "Summary", "impact": "Impact", "root-cause": "Root cause", "decision": "Decision",
    "resolution": "Resolution", "prevention": "Prevention", "lesson": "Lesson", "went-well": "Went well",
    "went-wrong": "Went wrong", "action": "Action item", "finding": "Finding",
})


def hint() -> str:
    """Every tag, for the note prompt: ``#summary #impact … @owner``."""
    return " ".join(f"#{tag}" for tag in TAGS) + " @owner"
