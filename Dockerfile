# robodash: one image for web (gunicorn), worker and beat (Celery). See docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ROBODASH_VAR_DIR=/app/var

WORKDIR /app

# Runtime files are owned by root and only readable by the app user; var/ (static files,
# beat's schedule) is the one place it writes.
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin robodash

# Dependencies first, from pyproject alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN mkdir -p robodash calls simulator \
    && touch robodash/__init__.py calls/__init__.py simulator/__init__.py \
    && pip install . \
    && pip uninstall --yes robodash \
    && rm -rf robodash calls simulator build *.egg-info

COPY . .
# Editable, so BASE_DIR stays /app and templates/ and static/ are found beside the code.
RUN pip install --no-deps -e . \
    && mkdir -p /app/var \
    && chown robodash:robodash /app/var

USER robodash

# collectstatic needs settings that import; these throwaway values exist only for this step.
RUN SECRET_KEY=collectstatic-only \
    FIELD_ENCRYPTION_KEY=JfU0Xy2jQm6w5b1sXhJ1mQq8yq2k8ZrZkqv4lWm3c8Y= \
    python manage.py collectstatic --noinput

EXPOSE 8000
CMD ["gunicorn", "robodash.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
