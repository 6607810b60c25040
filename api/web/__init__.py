"""The inspector web UI: server-rendered pages (Jinja2) over the same data and scope rules as the JSON API.

``site.install(app, settings)`` adds the pages, the biometric image endpoints, static files, security
headers, friendly error pages and the login rate limiter to the API app. This file imports nothing:
``api.deps`` uses ``api.web.auth``, and the pages use ``api.deps``.
"""
