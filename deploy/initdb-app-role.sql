-- Run once by the postgres image on first start (docker-entrypoint-initdb.d): the service's own role.
-- It owns nothing: migrations run as the owner (POSTGRES_USER) and grant it rights afterwards
-- (`mvno-core migrate` / `serve` with MVNO_MIGRATION_DATABASE_URL set). Change the password in a real
-- deployment.
CREATE ROLE mvno_app LOGIN PASSWORD 'mvno_app' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
