"""gunicorn's settings for every way this project starts it (Procfile, Dockerfile, benchmarks,
reliability servers): gunicorn reads ./gunicorn.conf.py from its working directory by itself.

limit_request_line: gunicorn's own default (4094 bytes) answers a longer request line with a
raw "414 Request-URI Too Large" page before Django sees it; a session-list link with a long
search or many tags can pass that, and Django's answer ("q: At most 200 characters") is the one
that explains itself. 8190 is gunicorn's maximum (https://docs.gunicorn.org/en/stable/settings.html#limit-request-line).
"""

limit_request_line = 8190
