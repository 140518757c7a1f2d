"""Sign-in through the organization's OIDC identity provider: the Claude Code gateway protocol (device
authorization, gateway tokens, managed settings, client telemetry) and the admin console's SSO."""
