# The dotMage server image: `dmage.pyz serve` on 0.0.0.0:8000 as a non-root
# user, SQLite in the /data volume (or PostgreSQL through DOTMAGE_DB_URL).
#   docker build -t dotmage/server .
#   docker run -d -p 9470:8000 -v dotmage-data:/data dotmage/server

# -- build dmage.pyz for this image's Python from the source tree -------------
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml build_zipapp.py zipapp_main.py ./
COPY dotmage ./dotmage
COPY static ./static
# The zip's timestamps; pass the commit time for bytes that match a release.
ARG SOURCE_DATE_EPOCH=315619200
RUN pip install --no-cache-dir --disable-pip-version-check argparse-manpage \
    && python build_zipapp.py --output /out/dmage.pyz

# -- the server ----------------------------------------------------------------
FROM python:3.12-slim
# psycopg (with its own libpq) lets DOTMAGE_DB_URL name a PostgreSQL server;
# it lives in the system site-packages, which dmage.pyz keeps on sys.path.
RUN pip install --no-cache-dir --disable-pip-version-check "psycopg[binary]>=3.1,<4" \
    && useradd --system --uid 10001 --user-group --home-dir /data \
        --shell /usr/sbin/nologin dotmage \
    && mkdir -p /data /app \
    && chown dotmage:dotmage /data
COPY --from=build /out/dmage.pyz /out/dmage.1 /app/
COPY static /app/static

ENV DOTMAGE_DB_URL=sqlite:////data/dotmage.db \
    DOTMAGE_STATIC_DIR=/app/static \
    DOTMAGE_CACHE_DIR=/app/cache \
    PYTHONUNBUFFERED=1

# Extract the dependencies and compile them now, as root, so the container
# starts without writing anything outside /data.
RUN python /app/dmage.pyz --version \
    && python -m compileall -q /app/cache

USER dotmage
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4)"]
CMD ["python", "/app/dmage.pyz", "serve", "--host", "0.0.0.0", "--port", "8000"]
