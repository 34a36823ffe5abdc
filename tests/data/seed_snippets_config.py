# Every c.Class.trait snippet in the JupyterHub security guides kept in
# /work/shared/seeds/ (000..004), once each, in the order the guides give them.
# hubd must load this file: tests/unit/config_test.cpp ("seed snippets") checks
# the values that land in Settings and the warnings.
#
# Two snippets are deliberately not here, because hubd refuses them; they are in
# seed_snippets_refused.py, which the same test checks for the errors:
#   c.LocalAuthenticator.create_system_users = True
#   c.JupyterHub.spawner_class = jupyterhub.spawner.LocalProcessSpawner
c = get_config()  # noqa

# 000 "Technical Overview" names c.JupyterHub.db_url without a value; this is the
# location the guide recommends (/srv/jupyterhub).
c.JupyterHub.db_url = 'sqlite:////srv/jupyterhub/jupyterhub.sqlite'

# 000, 002: allowed, blocked and admin users
c.Authenticator.allowed_users = {'mal', 'zoe', 'inara', 'kaylee'}
c.Authenticator.blocked_users = {'jane'}
c.Authenticator.admin_users = {'mal', 'zoe'}
c.PAMAuthenticator.admin_groups = {'wheel'}

# 000, 002: DummyAuthenticator for testing (no effect while PAM is active)
c.DummyAuthenticator.password = "some_password"

# 000, 002, 004: TLS (the last value stays)
c.JupyterHub.ssl_key = '/path/to/my.key'
c.JupyterHub.ssl_cert = '/path/to/my.cert'
c.JupyterHub.ssl_key = '/etc/letsencrypt/live/{mydomain.tld}/privkey.pem'
c.JupyterHub.ssl_cert = '/etc/letsencrypt/live/{mydomain.tld}/fullchain.pem'
c.JupyterHub.ssl_key = '/etc/letsencrypt/live/example.com/privkey.pem'
c.JupyterHub.ssl_cert = '/etc/letsencrypt/live/example.com/fullchain.pem'

# 000, 002 name c.JupyterHub.internal_certs_location without a value; this is
# JupyterHub's default.
c.JupyterHub.internal_certs_location = 'internal-ssl'

# 000, 002: proxy authentication token (hubd has no separate proxy)
c.ConfigurableHTTPProxy.api_token = 'abc123...' # any random string

# 000, 002, 004: cookie secret file
c.JupyterHub.cookie_secret_file = '/srv/jupyterhub/jupyterhub_cookie_secret'
c.JupyterHub.cookie_secret_file = '/srv/jupyterhub/cookie_secret'

# 000, 002, 004 write bytes.fromhex('64 CHAR HEX STRING'), a placeholder the reader
# must replace. It is not hexadecimal, so hubd refuses it as Python would; this
# value is real output of `openssl rand -hex 32`.
c.JupyterHub.cookie_secret = bytes.fromhex('037129b230c32443e455ef7d8a9b09600f24b76d9b93e730d0daf9839be8cf45')

# 004: proxy authentication token, the older trait (hubd has no separate proxy)
c.JupyterHub.proxy_auth_token = '0bc02bede919e99a26de1e2a7a5aadfaf6228de836ec39a05a6c6942831d8fe5'

# 000 "Spawner Security" (in prose): the default command, and disable_user_config,
# named without a value; True is the setting the guide recommends.
c.Spawner.cmd = ['jupyterhub-singleuser']
c.Spawner.disable_user_config = True

# 000, 001, 002: PAM session errors when the hub is not root
c.PAMAuthenticator.open_sessions = False
