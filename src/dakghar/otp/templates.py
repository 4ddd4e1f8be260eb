"""OTP message texts: ``{code}`` and ``{minutes}`` placeholders, and the masked twin of a text.

Only these two placeholders are replaced (plain substitution, not ``str.format``), so an
application's template can never reach into Python objects and other braces stay literal.
"""

from __future__ import annotations

import math

from dakghar.errors import ValidationError

DEFAULT_TEMPLATE = "Your verification code is {code}. It expires in {minutes} min."
CODE, MINUTES = "{code}", "{minutes}"


def check_template(template: str) -> None:
    """Refuse a template that would send no code (422 ``validation_error`` on ``template``)."""
    if CODE not in template:
        raise ValidationError(
            "template must contain the placeholder {code}, e.g. 'Your code is {code}'",
            errors=[{"field": "template", "code": "validation_error"}],
        )


def minutes(ttl_seconds: int) -> int:
    """The validity in whole minutes, rounded up (a 90 s code 'expires in 2 minutes')."""
    return max(1, math.ceil(ttl_seconds / 60))


def render(template: str, code: str, ttl_seconds: int) -> str:
    """The text to send."""
    return template.replace(CODE, code).replace(MINUTES, str(minutes(ttl_seconds)))


def masked(template: str, length: int, ttl_seconds: int) -> str:
    """The same text with the code as asterisks: what the message shows once a carrier has it."""
    return render(template, "*" * length, ttl_seconds)
