"""Secrets at rest: bot tokens and Knowlify keys are stored encrypted with KNOWLIFY_ENCRYPTION_KEYS.

The setting is a comma-separated list of Fernet keys (cryptography's MultiFernet): the first
encrypts, every one decrypts, so an operator rotates by putting a new key first, re-encrypting
(`Vault.rotate`) and later dropping the old key.

Each ciphertext is bound to its workspace: what is encrypted is `team_id + NUL + secret`, and
decryption checks the prefix. A row copied onto another workspace's row (by a bug or by someone with
write access to the database) then fails to decrypt instead of handing one workspace another's token.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SEPARATOR = "\0"


class VaultError(Exception):
    """A ciphertext that no configured key opens, or that belongs to another workspace."""


def parse_keys(value: str) -> list[Fernet]:
    """The Fernet keys of the setting, first one first; ValueError (never showing a key) if malformed."""
    parts = [p.strip() for p in value.split(",")]
    if not parts or not all(parts):
        raise ValueError(
            "must be one or more Fernet keys separated by commas (make one with: "
            'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")'
        )
    keys = []
    for n, part in enumerate(parts, start=1):
        try:
            keys.append(Fernet(part.encode()))
        except (ValueError, TypeError):
            raise ValueError(
                f"key {n} of {len(parts)} is not a Fernet key (32 bytes, url-safe base64, 44 characters)"
            ) from None
    return keys


class Vault:
    def __init__(self, keys: str) -> None:
        self._fernet = MultiFernet(parse_keys(keys))

    def encrypt(self, team_id: str, secret: str) -> str:
        if not team_id or SEPARATOR in team_id:
            raise ValueError("a workspace id is needed to encrypt a secret")
        return self._fernet.encrypt(f"{team_id}{SEPARATOR}{secret}".encode()).decode("ascii")

    def decrypt(self, team_id: str, ciphertext: str) -> str:
        try:
            plain = self._fernet.decrypt(ciphertext.encode("ascii")).decode()
        except (InvalidToken, UnicodeError, ValueError):
            raise VaultError("no key in KNOWLIFY_ENCRYPTION_KEYS decrypts this value") from None
        owner, sep, secret = plain.partition(SEPARATOR)
        if not sep or owner != team_id:
            raise VaultError("this value was encrypted for another workspace")
        return secret

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the first key (the team binding is inside and stays)."""
        try:
            return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, ValueError):
            raise VaultError("no key in KNOWLIFY_ENCRYPTION_KEYS decrypts this value") from None
