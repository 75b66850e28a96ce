-- Every transaction that changes what a manifest read answers (which repositories exist, where
-- tags point, which manifests exist and what they hold) notifies channel shipshape_changes once
-- at commit: identical notices of one transaction are folded into one by PostgreSQL, and the
-- triggers fire per statement, so a collection forgetting thousands of rows sends one.
-- Each node's manifest cache moves on when it arrives (crates/meta/src/changes.rs). Pull counts
-- and times are left out on purpose: they change on every flush and answer no read.
CREATE FUNCTION shipshape_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shipshape_changes', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER repositories_changed
    AFTER INSERT OR DELETE OR UPDATE OF id, name, deleted_at ON repositories
    FOR EACH STATEMENT EXECUTE FUNCTION shipshape_notify_change();
CREATE TRIGGER repositories_truncated AFTER TRUNCATE ON repositories
    FOR EACH STATEMENT EXECUTE FUNCTION shipshape_notify_change();

CREATE TRIGGER tags_changed
    AFTER INSERT OR DELETE OR UPDATE OF repository_id, name, manifest_id ON tags
    FOR EACH STATEMENT EXECUTE FUNCTION shipshape_notify_change();
CREATE TRIGGER tags_truncated AFTER TRUNCATE ON tags
    FOR EACH STATEMENT EXECUTE FUNCTION shipshape_notify_change();

CREATE TRIGGER manifests_changed
    AFTER INSERT OR DELETE OR UPDATE OF id, repository_id, digest, media_type, size, payload, deleted_at
    ON manifests
    FOR EACH STATEMENT EXECUTE FUNCTION shipshape_notify_change();
CREATE TRIGGER manifests_truncated AFTER TRUNCATE ON manifests
    FOR EACH STATEMENT EXECUTE FUNCTION shipshape_notify_change();
