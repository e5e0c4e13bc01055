"""The operator console: server-rendered pages under /console over the API's own services."""
