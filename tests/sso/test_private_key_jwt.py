"""orgate authenticates to the IdP with a signed JWT (private_key_jwt, RFC 7523) instead of a secret."""

from __future__ import annotations

from joserfc.jwk import RSAKey

from tests.sso.helpers import login, sso_gateway


def test_sign_in_with_private_key_jwt(fake_session, idp, tmp_path):
    key = RSAKey.generate_key(2048, parameters={"kid": "orgate-client"})
    pem = tmp_path / "client.pem"
    pem.write_bytes(key.as_pem(private=True))
    idp.client_public_key = RSAKey.import_key(key.as_dict(private=False))
    gw = sso_gateway(fake_session.url, idp, ORGATE_SSO__PRIVATE_KEY_FILE=str(pem))
    gw.env.pop("ORGATE_SSO__CLIENT_SECRET")  # no secret at all: the signed assertion is the only credential
    gw.start(timeout=120)
    try:
        before = idp.assertions
        tokens = login(gw)
        assert tokens["access_token"] and idp.assertions == before + 1
    finally:
        gw.stop()
        idp.client_public_key = None
