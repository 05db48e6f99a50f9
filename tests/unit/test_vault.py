"""Tokens and keys at rest: encrypted with KNOWLIFY_ENCRYPTION_KEYS, bound to their workspace,
rotatable; a malformed setting stops start-up naming it, never showing a key."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from bot.settings import SettingsError, load_settings
from bot.vault import Vault, VaultError
from tests.helpers import run_cli_start

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
TOKEN = "xoxb-1234-5678-" + "a" * 24
DISTRIBUTED = {
    "SLACK_CLIENT_ID": "111.222",
    "SLACK_CLIENT_SECRET": "client-secret-value",
    "SLACK_SIGNING_SECRET": "s3cret",
    "KNOWLIFY_ENCRYPTION_KEYS": OLD,
}


def test_a_secret_comes_back_only_for_its_own_workspace():
    vault = Vault(OLD)
    sealed = vault.encrypt("T1", TOKEN)
    assert TOKEN not in sealed and "T1" not in sealed
    assert vault.decrypt("T1", sealed) == TOKEN
    with pytest.raises(VaultError, match="another workspace"):
        vault.decrypt("T2", sealed)


def test_rotation_first_key_encrypts_every_key_decrypts():
    sealed_old = Vault(OLD).encrypt("T1", TOKEN)
    both = Vault(f"{NEW},{OLD}")
    assert both.decrypt("T1", sealed_old) == TOKEN
    rotated = both.rotate(sealed_old)
    assert Vault(NEW).decrypt("T1", rotated) == TOKEN  # the old key can now be dropped
    with pytest.raises(VaultError):
        Vault(OLD).decrypt("T1", Vault(NEW).encrypt("T1", TOKEN))


def test_a_value_no_key_opens_is_an_error_not_garbage():
    with pytest.raises(VaultError):
        Vault(NEW).decrypt("T1", Vault(OLD).encrypt("T1", TOKEN))
    with pytest.raises(VaultError):
        Vault(NEW).decrypt("T1", "not a ciphertext")


def set_env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_client_credentials_and_encryption_keys_without_a_bot_token_mean_distributed(monkeypatch):
    set_env(monkeypatch, DISTRIBUTED)
    settings = load_settings("serve")  # no SLACK_BOT_TOKEN, no KNOWLIFY_API_KEY needed
    assert settings.distributed
    assert OLD in settings.secrets() and "client-secret-value" in settings.secrets()
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-2-abc")
    monkeypatch.setenv("KNOWLIFY_API_KEY", "kn_" + "ab" * 32)
    assert not load_settings("serve").distributed  # a bot token keeps the single-workspace set-up


@pytest.mark.parametrize(
    "value", ["not-a-key", f"{OLD},", f"{OLD},short", "A" * 44 + "!"], ids=["junk", "empty", "short", "bad"]
)
def test_malformed_encryption_keys_are_named_without_showing_them(monkeypatch, value):
    set_env(monkeypatch, {**DISTRIBUTED, "KNOWLIFY_ENCRYPTION_KEYS": value})
    with pytest.raises(SettingsError) as err:
        load_settings("serve")
    message = str(err.value)
    assert message.startswith("KNOWLIFY_ENCRYPTION_KEYS") and "\n" not in message
    assert OLD not in message and value not in message


def test_distributed_mode_names_what_it_lacks(monkeypatch):
    set_env(monkeypatch, {k: v for k, v in DISTRIBUTED.items() if k != "SLACK_SIGNING_SECRET"})
    with pytest.raises(SettingsError, match="SLACK_SIGNING_SECRET"):
        load_settings("serve")


def test_cli_exits_2_on_malformed_encryption_keys(tmp_path):
    code, lines, stderr = run_cli_start(tmp_path, {**DISTRIBUTED, "KNOWLIFY_ENCRYPTION_KEYS": "kn-not-fernet"})
    assert code == 2
    assert len(lines) == 1 and "KNOWLIFY_ENCRYPTION_KEYS" in lines[0]
    assert "Traceback" not in stderr and "kn-not-fernet" not in stderr
