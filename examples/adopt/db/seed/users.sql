-- 5000 users (phasegate.seed_rows overrides), some with one name, some with three.
INSERT INTO users (email, full_name)
SELECT 'user' || g || '@example.test',
       (ARRAY['Ada', 'Grace', 'Linus', 'Barbara', 'Ken'])[1 + g % 5]
       || CASE WHEN g % 7 = 0 THEN '' ELSE ' ' || (ARRAY['Lovelace', 'Hopper', 'van Rossum', 'Liskov', 'Thompson'])[1 + g % 5] END
FROM generate_series(1, coalesce(nullif(current_setting('phasegate.seed_rows', true), '')::int, 5000)) AS g;
