"""Request and response models of the API (what the OpenAPI document declares)."""
