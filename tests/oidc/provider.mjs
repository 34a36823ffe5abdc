// SPDX-License-Identifier: BSD-3-Clause
// A real OpenID Connect provider for hubd's tests: oidc-provider (a
// certified implementation) on http://127.0.0.1:PORT with its development
// login and consent pages, one confidential client, and test accounts.
//
//   node provider.mjs PORT CLIENT_ID REDIRECT_URI
//   env OIDC_CLIENT_SECRET: the client's secret (not in argv)
//   env OIDC_ACCOUNTS: {"login": {"preferred_username": "...", "groups": [...]}, ...}
//   env OIDC_AUTH_METHOD: client_secret_basic (default) or client_secret_post
//
// Prints "oidc-provider listening on ISSUER" once it accepts connections.
import Provider from 'oidc-provider';

const [port, clientId, redirectUri] = process.argv.slice(2);
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || '{}');
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: process.env.OIDC_CLIENT_SECRET,
    redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: process.env.OIDC_AUTH_METHOD || 'client_secret_basic',
  }],
  // The claims hubd reads come in the ID token, as many providers send them.
  conformIdTokenClaims: false,
  claims: { openid: ['sub'], profile: ['preferred_username', 'name', 'groups'] },
  scopes: ['openid', 'profile'],
  pkce: { required: () => true },
  cookies: { keys: ['hubd-oidc-test-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, sub) {
    const account = accounts[sub];
    if (!account) return undefined;
    return { accountId: sub, async claims() { return { sub, ...account }; } };
  },
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
