# One image for the API and the outbound worker.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY api ./api
COPY bot ./bot
COPY templates ./templates
COPY locales ./locales
COPY babel.cfg ./
# The catalogs as `make compile-messages` and `make compile-agent-messages` build them: the bot's
# `messages` in every language and the agent console's `agent` (English and Urdu).
RUN pip install -e . \
    && for po in locales/*/LC_MESSAGES/messages.po; do \
         lang=$(basename "$(dirname "$(dirname "$po")")"); \
         pybabel compile --domain messages -i "$po" -o "${po%.po}.mo" -l "$lang"; \
       done \
    && for po in locales/agent/*/LC_MESSAGES/agent.po; do \
         lang=$(basename "$(dirname "$(dirname "$po")")"); \
         pybabel compile --domain agent -i "$po" -o "${po%.po}.mo" -l "$lang"; \
       done \
    && useradd --create-home --uid 10001 rabta \
    && mkdir -p /app/var && chown rabta /app/var
USER rabta

EXPOSE 8000
CMD ["rabta", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
