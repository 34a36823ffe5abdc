#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The Google and Azure AD presets against a provider that signs what the test asks.

Each preset's issuer is replaced (OAuthenticator.oidc_issuer) by the hostile
provider of test_oidc_login.py, which signs ID tokens with the claims a
Google Workspace or an Azure AD tenant would send, or with the claims of an
account from elsewhere. Regressions for OAuthenticator's advisories:

* GHSA-55m3-44xf-hg4h (GoogleOAuthenticator.hosted_domain): an account
  without the ID token's `hd`, or with another organisation's `hd`, is
  refused even when its email address is in the hosted domain;
* CVE-2022-31027 (an email domain trusted instead of the identity provider):
  the email's domain is never proof of organisation;
* GHSA-384w-5v3f-q499 (an allow-list setting silently ignored): old and
  unimplemented allow-list names stop start-up, `Authenticator.whitelist` is
  enforced;
* Azure AD: an ID token from another tenant (`tid`) or without one is
  refused; multi-tenant `tenant_id` values stop start-up.

Needs root (real Unix accounts for the mapping; exit 77 otherwise) and openssl.
"""
import os
import shutil
import subprocess
import tempfile
import urllib.parse

import hubtest
from hubtest import check
from test_oidc_login import CLIENT_ID, SECRET, Hostile, signed_in_as, through_provider, unstarted_hub

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
OTHER_ORGANISATION = b"admits accounts of its own organisation only"


def preset_config(cls, issuer, port, extra=""):
    return f"""
c.JupyterHub.authenticator_class = '{cls}'
c.OAuthenticator.oidc_issuer = '{issuer}'
c.OAuthenticator.client_id = '{CLIENT_ID}'
c.OAuthenticator.client_secret = '{SECRET}'
c.OAuthenticator.oauth_callback_url = 'http://127.0.0.1:{port}/hub/oauth_callback'
{extra}
"""


def preset_hub(cls, hostile, extra):
    hub = unstarted_hub()
    hub.setup()
    hub.config = preset_config(cls, hostile.issuer, hub.port, extra + f"\nc.JupyterHub.audit_log = {hub.path('audit.log')!r}")
    hub.write_file("config.py", hub.config, 0o644)
    return hub


def sign_in(hub, hostile, claims):
    """(status, body, client, authorize query) of the callback after the provider signs `claims`."""
    hostile.extra_claims = claims
    c, status, body, authorize = through_provider(hub, hostile.issuer)
    return status, body, c, urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query)


def refused(hub, status, body, c, page, log, what):
    check(status == 403 and page in body and "jupyterhub-hub-login" not in c.cookies,
          f"{what}: refused with a page ({status})")
    check(log in hub.log_text(), f"{what}: the log says why ({log})")


def test_google():
    alice = hubtest.SystemUser(password=None)
    with alice:
        hostile = Hostile()
        try:
            hub = preset_hub("oauthenticator.google.GoogleOAuthenticator", hostile,
                             "c.GoogleOAuthenticator.hosted_domain = ['example.org']")
            with hub:
                status, _, body = hub.client().get("/hub/login")
                check(status == 200 and b"Sign in with Google" in body, "the button says 'Sign in with Google'")
                status, body, c, q = sign_in(hub, hostile, {"email": f"{alice.name}@example.org", "hd": "example.org"})
                check(q.get("scope") == ["openid email"], f"the preset asks for 'openid email' ({q.get('scope')})")
                check(status == 302 and signed_in_as(c, alice.name),
                      f"an example.org account signs in as the local account {alice.name} (domain stripped)")

                # GHSA-55m3-44xf-hg4h / CVE-2022-31027: the address is in the domain, the account is not.
                status, body, c, _ = sign_in(hub, hostile, {"email": f"{alice.name}@example.org"})
                refused(hub, status, body, c, OTHER_ORGANISATION, "the ID token has no 'hd' claim",
                        "a personal Google account with an example.org address (no hd)")
                status, body, c, _ = sign_in(hub, hostile, {"email": f"{alice.name}@example.org", "hd": "evil.org"})
                refused(hub, status, body, c, OTHER_ORGANISATION, "the ID token's 'hd' claim is 'evil.org'",
                        "another Workspace's account with an example.org address")
                status, body, c, _ = sign_in(hub, hostile, {"email": f"{alice.name}@example.org",
                                                            "hd": "example.org.evil"})
                refused(hub, status, body, c, OTHER_ORGANISATION, "'hd' claim is 'example.org.evil'",
                        "an hd that only starts with the hosted domain")
                # The domain is stripped only when it is the hosted domain: another
                # address keeps its domain and maps to no local account.
                status, body, c, _ = sign_in(hub, hostile, {"email": f"{alice.name}@evil.org", "hd": "example.org"})
                refused(hub, status, body, c, b"has no account", f"has no account '{alice.name}@evil.org'",
                        "an address outside the hosted domain")
                audit = hub.audit_lines()
                check(sum("login.failure" in a and "'hd' claim" in a for a in audit) == 3
                      and any("login.success" in a and alice.name in a for a in audit),
                      "the sign-in and each hd refusal are in the audit log")
                check(SECRET not in hub.log_text(), "the client secret is never logged")

            # GHSA-384w-5v3f-q499: the deprecated allow-list is enforced, not ignored.
            hub = preset_hub("google", hostile, "c.GoogleOAuthenticator.hosted_domain = ['example.org']\n"
                                                "c.Authenticator.whitelist = {'somebody-else'}")
            with hub:
                status, body, c, _ = sign_in(hub, hostile, {"email": f"{alice.name}@example.org", "hd": "example.org"})
                refused(hub, status, body, c, b"not allowed", "not in allowed_users",
                        "Authenticator.whitelist (deprecated) still restricts sign-in")
            # No hosted_domain: any Google account, as in OAuthenticator; the name is the address.
            hub = preset_hub("google", hostile, f"c.Authenticator.username_map = {{'{alice.name}@gmail.com': "
                                                f"'{alice.name}'}}")
            with hub:
                status, body, c, _ = sign_in(hub, hostile, {"email": f"{alice.name}@gmail.com"})
                check(status == 302 and signed_in_as(c, alice.name),
                      "without hosted_domain any account signs in, mapped by username_map")
        finally:
            hostile.close()


def test_azure():
    alice = hubtest.SystemUser(password=None)
    with alice:
        hostile = Hostile()
        try:
            hub = preset_hub("azuread", hostile, f"c.AzureAdOAuthenticator.tenant_id = '{TENANT}'")
            with hub:
                status, _, body = hub.client().get("/hub/login")
                check(status == 200 and b"Sign in with Azure AD" in body, "the button says 'Sign in with Azure AD'")
                status, body, c, q = sign_in(hub, hostile, {"name": alice.name, "tid": TENANT})
                check(q.get("scope") == ["openid profile"], f"the preset asks for 'openid profile' ({q.get('scope')})")
                check(status == 302 and signed_in_as(c, alice.name),
                      "an account of the tenant signs in as the local account named by the 'name' claim")
                status, body, c, _ = sign_in(hub, hostile, {"name": alice.name, "tid": OTHER_TENANT})
                refused(hub, status, body, c, OTHER_ORGANISATION, f"'tid' claim is '{OTHER_TENANT}'",
                        "an account of another tenant")
                status, body, c, _ = sign_in(hub, hostile, {"name": alice.name})
                refused(hub, status, body, c, OTHER_ORGANISATION, "the ID token has no 'tid' claim",
                        "an ID token without tid")
        finally:
            hostile.close()


def check_config(text):
    with tempfile.TemporaryDirectory(prefix="hubtest-presets-") as d:
        path = os.path.join(d, "jupyterhub_config.py")
        with open(path, "w") as f:
            f.write("c = get_config()\n" + text)
        return subprocess.run([hubtest.HUBD, "--check-config", "-f", path], capture_output=True, text=True,
                              timeout=30)


def test_start_refusals():
    """Settings that would admit more than the admin wrote stop start-up, naming the trait."""
    base = preset_config("google", "https://accounts.google.com", 8000)
    good = check_config(base + "c.GoogleOAuthenticator.hosted_domain = ['example.org']\n")
    check(good.returncode == 0, f"control: a Google preset configuration passes ({good.stderr.strip()[:200]})")
    for extra, want, what in (
            ("c.GoogleOAuthenticator.google_group_whitelist = {'example.org': {'staff'}}",
             "google_group_whitelist is not implemented", "the old Google group allow-list"),
            ("c.GoogleOAuthenticator.allowed_google_groups = {'example.org': {'staff'}}",
             "allowed_google_groups is not implemented", "Google groups"),
            ("c.OAuthenticator.token_url = 'https://evil.example/token'",
             "knows its provider's endpoints", "a preset's endpoint moved elsewhere"),
    ):
        r = check_config(base + extra + "\n")
        check(r.returncode != 0 and want in r.stderr and "jupyterhub_config.py:" in r.stderr,
              f"{what} stops start-up with FILE:LINE ({r.stderr.strip()[:160]})")
    azure = preset_config("azuread", "https://login.microsoftonline.com/x/v2.0", 8000)
    for tenant in ("common", "organizations", "consumers"):
        r = check_config(azure + f"c.AzureAdOAuthenticator.tenant_id = '{tenant}'\n")
        check(r.returncode != 0 and "admits other organisations' accounts" in r.stderr,
              f"tenant_id '{tenant}' (multi-tenant) stops start-up")
    r = check_config(azure + "c.AzureAdOAuthenticator.tenant_id = 'example.onmicrosoft.com'\n")
    check(r.returncode != 0 and "must be your directory's tenant id, a GUID" in r.stderr,
          "a tenant_id that is not a GUID stops start-up")


def main():
    def needs():
        hubtest.require_root()
        hubtest.require_hubd()
        if not shutil.which("openssl"):
            hubtest.skip("openssl is needed")

    def google():
        needs()
        test_google()

    def azure():
        needs()
        test_azure()

    def refusals():
        hubtest.require_hubd()
        test_start_refusals()

    hubtest.main([("google", google), ("azure", azure), ("start_refusals", refusals)])


if __name__ == "__main__":
    main()
