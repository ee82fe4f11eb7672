"""The REST API: account linking, order reads and exports, health (`api.app.create_app`)."""
