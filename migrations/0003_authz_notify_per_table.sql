-- Fix: notify_authz_change() read NEW.telegram_id in one CASE for every table, and PL/pgSQL
-- resolves that field even in the branch not taken, so every change to role_permissions
-- failed ("record new has no field telegram_id"): roles could not be edited as data.
-- Each table's branch is now its own statement, planned only when it runs.
CREATE OR REPLACE FUNCTION notify_authz_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME NOT IN ('users', 'user_roles') THEN
        PERFORM pg_notify('opsguard_authz', '*');
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('opsguard_authz', OLD.telegram_id::text);
    ELSE
        PERFORM pg_notify('opsguard_authz', NEW.telegram_id::text);
        IF TG_OP = 'UPDATE' AND OLD.telegram_id <> NEW.telegram_id THEN
            PERFORM pg_notify('opsguard_authz', OLD.telegram_id::text);
        END IF;
    END IF;
    RETURN NULL;
END $$;
