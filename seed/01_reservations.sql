-- Rehearsal data: realistic reservations of a Korean aesthetic clinic, in the
-- messy "preferredTime" formats found in production. Runs after phase 0, in
-- rehearsals only. Deterministic: every value is derived from the row number
-- through hashtext(), so a rerun produces identical rows (no random()).
-- Row count: SET phasegate.seed_rows = '5000000' (or PGOPTIONS='-c
-- phasegate.seed_rows=5000000') for a bigger rehearsal; default 100000.
--
-- Mix of "preferredTime" (by share of rows):
--   35% "HH:MM" 24h ("09:30", "14:00")      10% "h:MM AM/PM" ("2:30 PM", "10:00am")
--    8% "10am", "3pm", "11 AM"              10% Korean ("오전", "오후 3시", "오전 10시 30분")
--   10% words ("morning", "Afternoon", "AM") 10% ranges ("10:00-11:00", "13:00~14:00")
--    7% blanks ('' and whitespace)          10% other ("점심 이후", "3시", "1430", "anytime")
-- About 55% of the intended times are in the morning, 45% in the afternoon.
-- "preferredDate" lies in the 3 years before 2026-11-01 (past dates only, so
-- bookings for future dates never meet seeded rows in the capacity check);
-- "createdAt" is 1 to 14 days before it, between 08:00 and 23:59 Seoul time.

INSERT INTO reservations
  ("patientName", phone, "birthDate", gender, "treatmentType", service,
   "preferredDate", "preferredTime", status, "createdAt")
SELECT
  (ARRAY['김','김','김','김','이','이','이','박','박','최','정','강','조','윤',
         '장','임','한','오','서','신','권','황','안','송','류','홍'])[1 + h.name1 % 26]
    || (ARRAY['민','서','지','수','현','하','예','윤','유','채','다','소','은','도',
              '준','시','태','주','연','혜'])[1 + h.name2 % 20]
    || (ARRAY['준','연','우','아','서','윤','민','희','진','영','빈','원','은','호',
              '현','경','나','린','율','훈'])[1 + h.name3 % 20],
  '010-' || lpad((1000 + h.phone1 % 9000)::text, 4, '0')
         || '-' || lpad((h.phone2 % 10000)::text, 4, '0'),
  date '1950-01-01' + (h.birth % (date '2005-12-31' - date '1950-01-01' + 1))::integer,
  CASE WHEN h.gender % 100 < 78 THEN 'FEMALE' ELSE 'MALE' END,
  CASE WHEN h.treatment % 100 < 42 THEN 'FIRST_VISIT' ELSE 'FOLLOW_UP' END,
  (CASE
     WHEN h.service % 100 < 30 THEN 'WRINKLE_BOTOX'
     WHEN h.service % 100 < 52 THEN 'SKIN_CARE'
     WHEN h.service % 100 < 70 THEN 'VOLUME_LIFTING'
     WHEN h.service % 100 < 82 THEN 'REMOVAL_PROCEDURE'
     WHEN h.service % 100 < 92 THEN 'BODY_CARE'
     ELSE 'OTHER_CONSULTATION'
   END)::"ServiceType",
  d.preferred_date,
  CASE
    WHEN h.fmt % 100 < 35 THEN
      lpad(t.hour24::text, 2, '0') || ':' || t.mm
    WHEN h.fmt % 100 < 45 THEN
      t.hour12::text || ':' || t.mm
        || (ARRAY[' ' || t.ampm, t.ampm, ' ' || lower(t.ampm), lower(t.ampm)])[1 + h.variant % 4]
    WHEN h.fmt % 100 < 53 THEN
      t.hour12::text
        || (ARRAY[lower(t.ampm), lower(t.ampm), ' ' || t.ampm, t.ampm])[1 + h.variant % 4]
    WHEN h.fmt % 100 < 63 THEN
      (ARRAY[t.ko,
             t.ko || ' ' || t.hour12 || '시',
             t.ko || ' ' || t.hour12 || '시' || CASE WHEN t.mm = '30' THEN ' 30분' ELSE '' END,
             t.ko || t.hour12 || '시',
             t.ko || ' ' || t.hour12 || '시' || CASE WHEN t.mm = '30' THEN '반' ELSE '' END])[1 + h.variant % 5]
    WHEN h.fmt % 100 < 73 THEN
      CASE WHEN t.morning
        THEN (ARRAY['morning', 'Morning', 'MORNING', 'AM', 'am', 'morning '])[1 + h.variant % 6]
        ELSE (ARRAY['afternoon', 'Afternoon', 'AFTERNOON', 'PM', 'pm', ' Afternoon'])[1 + h.variant % 6]
      END
    WHEN h.fmt % 100 < 83 THEN
      (ARRAY[lpad(t.hour24::text, 2, '0') || ':' || t.mm || '-' || lpad((t.hour24 + 1)::text, 2, '0') || ':' || t.mm,
             lpad(t.hour24::text, 2, '0') || ':' || t.mm || '~' || lpad((t.hour24 + 1)::text, 2, '0') || ':' || t.mm,
             lpad(t.hour24::text, 2, '0') || ':' || t.mm || ' - ' || lpad((t.hour24 + 1)::text, 2, '0') || ':' || t.mm,
             t.hour12::text || ':' || t.mm || '~' || (t.hour12 % 12 + 1)::text || ':' || t.mm,
             t.ko || ' ' || t.hour12 || '시~' || (t.hour12 % 12 + 1) || '시'])[1 + h.variant % 5]
    WHEN h.fmt % 100 < 90 THEN
      (ARRAY['', ' ', '  ', E'\t', '   ', ''])[1 + h.variant % 6]
    ELSE
      CASE
        WHEN h.variant % 10 = 0 THEN
          (ARRAY['anytime', '상관없음', '아무때나', '시간 협의', '?'])[1 + h.variant / 10 % 5]
        WHEN t.morning THEN
          (ARRAY['오전 중', '아침', t.hour12 || '시', t.hour12 || '시 30분', 'early morning',
                 '오전중', 'AM ' || t.hour12, t.hour24 || '시 반', lpad(t.hour24::text, 2, '0') || t.mm,
                 t.hour12 || ' a.m.'])[1 + h.variant / 10 % 10]
        ELSE
          (ARRAY['점심 이후', '저녁', t.hour24 || '시', 'after lunch', 'noon', '오후 늦게',
                 t.hour24 || t.mm, 'late afternoon', 'PM ' || t.hour12, t.hour12 || ' p.m.'])[1 + h.variant / 10 % 10]
      END
  END,
  CASE
    WHEN h.status % 100 < 66 THEN 'COMPLETED'
    WHEN h.status % 100 < 78 THEN 'CANCELLED'
    WHEN h.status % 100 < 83 THEN 'NO_SHOW'
    WHEN h.status % 100 < 94 THEN 'CONFIRMED'
    ELSE 'PENDING'
  END,
  ((d.preferred_date - (1 + h.created % 14)::integer)::timestamp
     + make_interval(hours => (8 + (h.created / 14) % 16)::integer, mins => ((h.created / 224) % 60)::integer))
    AT TIME ZONE 'Asia/Seoul'
FROM (
  SELECT
    i,
    hashtext('name1:' || i)::bigint + 2147483648     AS name1,
    hashtext('name2:' || i)::bigint + 2147483648     AS name2,
    hashtext('name3:' || i)::bigint + 2147483648     AS name3,
    hashtext('phone1:' || i)::bigint + 2147483648    AS phone1,
    hashtext('phone2:' || i)::bigint + 2147483648    AS phone2,
    hashtext('birth:' || i)::bigint + 2147483648     AS birth,
    hashtext('gender:' || i)::bigint + 2147483648    AS gender,
    hashtext('treatment:' || i)::bigint + 2147483648 AS treatment,
    hashtext('service:' || i)::bigint + 2147483648   AS service,
    hashtext('date:' || i)::bigint + 2147483648      AS date,
    hashtext('period:' || i)::bigint + 2147483648    AS period,
    hashtext('hour:' || i)::bigint + 2147483648      AS hour,
    hashtext('fmt:' || i)::bigint + 2147483648       AS fmt,
    hashtext('variant:' || i)::bigint + 2147483648   AS variant,
    hashtext('status:' || i)::bigint + 2147483648    AS status,
    hashtext('created:' || i)::bigint + 2147483648   AS created
  FROM generate_series(1, coalesce(nullif(current_setting('phasegate.seed_rows', true), '')::integer, 100000)) AS i
) AS h
CROSS JOIN LATERAL (
  SELECT date '2026-11-01' - 1 - (h.date % 1096)::integer AS preferred_date
) AS d
CROSS JOIN LATERAL (
  SELECT
    x.morning,
    x.hour24,
    CASE WHEN x.hour24 % 12 = 0 THEN 12 ELSE x.hour24 % 12 END AS hour12,
    CASE WHEN x.morning THEN 'AM' ELSE 'PM' END                AS ampm,
    CASE WHEN x.morning THEN '오전' ELSE '오후' END            AS ko,
    CASE WHEN h.hour / 7 % 2 = 0 THEN '00' ELSE '30' END       AS mm
  FROM (
    SELECT h.period % 100 < 55 AS morning,
           CASE WHEN h.period % 100 < 55 THEN 9 + (h.hour % 3)::integer
                ELSE 12 + (h.hour % 7)::integer END AS hour24
  ) AS x
) AS t
ORDER BY h.i;

ANALYZE reservations;
