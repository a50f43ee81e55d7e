-- Runs once when the PostgreSQL data volume is first initialised (docker-entrypoint-initdb.d):
-- Unleash keeps its own database beside the application's `cinemaabyss`.
CREATE DATABASE unleash;
