"""DATABASE_URL spellings: every PostgreSQL form people paste reaches the bundled psycopg 3 driver."""

from __future__ import annotations

import pytest

from storage.db import make_engine, normalize_url


@pytest.mark.parametrize(
    "given",
    [
        "postgres://bot:pw@db.internal:5432/knowlify",
        "postgresql://bot:pw@db.internal:5432/knowlify",
        "postgresql+psycopg://bot:pw@db.internal:5432/knowlify",
    ],
)
def test_postgres_urls_use_psycopg3(given: str) -> None:
    assert normalize_url(given) == "postgresql+psycopg://bot:pw@db.internal:5432/knowlify"
    engine = make_engine(given)  # no connection is made until first use
    assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
    assert engine.url.host == "db.internal" and engine.url.database == "knowlify"
    engine.dispose()


@pytest.mark.parametrize(
    "given", ["sqlite:///knowlify-slack.db", "sqlite:////var/lib/bot.db", "postgresql+psycopg2://h/d"]
)
def test_other_urls_are_left_alone(given: str) -> None:
    assert normalize_url(given) == given
