"""Logged exceptions carry their traceback, never the local variables of its frames."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from dakghar.observability.logging import configure_logging, get_logger


def _fail_with_secrets_in_locals() -> None:
    body = "Your code is 482913"  # noqa: F841 - the local a pretty traceback would print
    password = "s3cr3tpw"  # noqa: F841
    raise RuntimeError("boom")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()  # other tests read the default console rendering


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_an_exception_log_shows_the_traceback_but_no_frame_locals(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", fmt)
    try:
        _fail_with_secrets_in_locals()
    except RuntimeError:
        get_logger("dakghar.test").exception("send failed unexpectedly", message_id="msg_1")
    err = capsys.readouterr().err
    assert "send failed unexpectedly" in err and "RuntimeError" in err and "boom" in err
    assert "482913" not in err and "s3cr3tpw" not in err
