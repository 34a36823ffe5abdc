# The two seed snippets hubd refuses on purpose (see seed_snippets_config.py).
# tests/unit/config_test.cpp checks each error and its line.
c = get_config()  # noqa

# 000, 002 "Use LocalAuthenticator to create system users"
c.LocalAuthenticator.create_system_users = True

# 000 "Default Spawner Security Settings", quoted as a configuration file needs it
c.JupyterHub.spawner_class = 'jupyterhub.spawner.LocalProcessSpawner'

# ... and exactly as the prose writes it (a name, which is not a literal)
c.JupyterHub.spawner_class = jupyterhub.spawner.LocalProcessSpawner
