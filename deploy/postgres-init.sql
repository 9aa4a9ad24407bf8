-- One PostgreSQL server, one database per service: each service owns its tables and never
-- reads another's. Every service database also carries its own outbox, inbox and
-- dead-letter tables (created by that service's migrations, never here).
--
-- docker-compose.yml mounts this file into /docker-entrypoint-initdb.d, so it runs once,
-- as POSTGRES_USER, when the data volume is first initialised (not on later starts).
-- Without Docker:  psql -v ON_ERROR_STOP=1 -U <owner role> -d postgres -f deploy/postgres-init.sql
-- The databases are owned by the role that runs this script; the services connect as it.
CREATE DATABASE mandet_adoption;
CREATE DATABASE mandet_ingest;
CREATE DATABASE mandet_scoring;
CREATE DATABASE mandet_reports;
