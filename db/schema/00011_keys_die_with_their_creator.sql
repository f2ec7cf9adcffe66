-- +goose Up
-- A key acts as the member who made it, and one made by an operator has no
-- creator. Deleting an account would set its keys' created_by to NULL and so turn
-- them into operator keys with the owner's role; instead they are revoked first,
-- whatever deletes the account, and every replica hears of each on the channel
-- apikey.ChannelRevoked listens to (delivered at commit).
-- +goose StatementBegin
CREATE FUNCTION api_keys_revoke_with_creator() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    k record;
BEGIN
    FOR k IN UPDATE api_keys SET revoked_at = now()
             WHERE created_by = OLD.id AND revoked_at IS NULL
             RETURNING hash
    LOOP
        PERFORM pg_notify('cairn_key_revoked', encode(k.hash, 'hex'));
    END LOOP;
    RETURN OLD;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER users_revoke_keys BEFORE DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION api_keys_revoke_with_creator();

-- +goose Down
DROP TRIGGER users_revoke_keys ON users;
DROP FUNCTION api_keys_revoke_with_creator();
