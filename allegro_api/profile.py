"""The linked account's own profile: `GET /me` (needs the `allegro:api:profile:read` scope).

Source: Allegro's REST API reference, "Get basic information about user" (`GET /me`); the body holds `id`,
`login`, `firstName`, `lastName`, `email`, `baseMarketplace` and, for company accounts, `company`, with
explicit nulls for what the account lacks.
"""

from __future__ import annotations

from allegro_api.model_base import AllegroModel, load_json_object


class AccountProfile(AllegroModel):
    """`GET /me`: the seller id (same as the access token's `user_name` claim) and the login."""

    id: str
    login: str | None = None

    @classmethod
    def from_json(cls, content: bytes) -> AccountProfile:
        """Parse a `GET /me` body.

        Raises:
            UnexpectedResponse: the body is not a JSON object.
            pydantic.ValidationError: it lacks an `id`.
        """
        return cls.model_validate(load_json_object(content))
