-- legacy-db writes movies until a handover moves the writes (epoch 1). Its movie ids stay below
-- 1,000,000,000; catalog-db allocates from there up (docs/architecture.md, "Ids that cannot
-- collide"), so the two stores can never hand out the same id.
INSERT INTO write_authority (entity, epoch, writer) VALUES ('movies', 1, true) ON CONFLICT (entity) DO NOTHING;
ALTER SEQUENCE movies_id_seq MAXVALUE 999999999;
