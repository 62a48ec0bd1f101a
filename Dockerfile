FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml README.md ./
COPY segql ./segql
COPY sql ./sql
COPY migrations ./migrations
COPY examples ./examples
RUN pip install --no-cache-dir . && useradd --create-home segql

USER segql
ENTRYPOINT ["segql"]
CMD ["--help"]
