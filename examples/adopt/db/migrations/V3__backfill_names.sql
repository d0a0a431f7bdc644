-- phasegate: batch 1000
-- The first word is the given name, the rest the family name.
UPDATE users u
SET given_name  = split_part(u.full_name, ' ', 1),
    family_name = nullif(substr(u.full_name, length(split_part(u.full_name, ' ', 1)) + 2), '')
WHERE u.id IN (
    SELECT id FROM users
    WHERE (:last_key IS NULL OR id > :last_key) AND given_name IS NULL
    ORDER BY id
    LIMIT :batch_size)
RETURNING u.id;
