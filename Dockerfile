FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -c constraints.txt -r requirements.txt

COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
RUN pip install --no-cache-dir --no-deps -e . \
    && useradd --system --uid 10001 mvno \
    && install -d -o mvno -m 0700 /var/lib/mvno
# The data folder holds the keys kept out of the database, created on first start (mode 0600): the PII
# key file (when MVNO_PII_KEYS is not given) and the audit signing key with the latest signed checkpoint.
# Keep it on a volume (docker-compose.yml does), or a rebuild loses them: names and ID numbers written
# before could no longer be decrypted, and the audit chain could no longer be anchored.
ENV MVNO_DATA_DIR=/var/lib/mvno
USER mvno

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"
# Migrates to head as the owner (MVNO_MIGRATION_DATABASE_URL), then serves as MVNO_DATABASE_URL's role.
# Demo data only when MVNO_DEMO=1 (see docker-compose.yml).
CMD ["sh", "-c", "mvno-core serve --host 0.0.0.0 --port 8000 $( [ \"${MVNO_DEMO:-0}\" = 1 ] && echo --demo || echo --no-demo )"]
