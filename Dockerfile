# syntax=docker/dockerfile:1
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_DEBUG=0

WORKDIR /app

# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p agentops_site projects sessions events analytics dashboard \
    && for d in agentops_site projects sessions events analytics dashboard; do touch "$d/__init__.py"; done \
    && pip install . \
    && pip uninstall -y agentops-server

COPY . .
RUN groupadd --system app && useradd --system --gid app --home /app app \
    # collectstatic needs a SECRET_KEY to import settings; this one signs nothing and is thrown away.
    && SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --no-input \
    && chown -R app:app /app

USER app
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"

# Sync workers, about two per core (threaded workers stalled under CPU-heavy views when measured).
CMD ["sh", "-c", "python manage.py migrate --no-input && exec gunicorn agentops_site.wsgi --bind 0.0.0.0:8000 --workers ${WEB_CONCURRENCY:-4} --timeout 60 --access-logfile -"]
