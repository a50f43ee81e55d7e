-- catalog-db takes movie writes only after a handover from legacy-db (docs/architecture.md,
-- "One writer per entity"). Its own movie ids start at 1,000,000,000 (legacy-db's stay below),
-- so the two stores can never hand out the same id; the legacy's existing ids stay as they are.
INSERT INTO write_authority (entity, epoch, writer) VALUES ('movies', 0, false) ON CONFLICT (entity) DO NOTHING;
ALTER SEQUENCE movies_id_seq MINVALUE 1000000000 MAXVALUE 2147483647 START WITH 1000000000 RESTART WITH 1000000000;
