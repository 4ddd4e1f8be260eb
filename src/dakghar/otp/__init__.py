"""OTP verification: codes sent on the OTP lane, checked in constant time, guarded against abuse.

``templates`` renders the message text (and its masked twin), ``protection`` holds the rate and
SMS-pumping limits, ``service`` ties them to the store and the accept step. The REST face is
``dakghar.api.otp``; the command line is ``dakghar.cli.otp``.
"""

from dakghar.otp.protection import Protection, ProtectionPolicy
from dakghar.otp.service import OtpPolicy, OtpRequest, OtpService
from dakghar.otp.templates import DEFAULT_TEMPLATE

__all__ = [
    "DEFAULT_TEMPLATE",
    "OtpPolicy",
    "OtpRequest",
    "OtpService",
    "Protection",
    "ProtectionPolicy",
]
