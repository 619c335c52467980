-- sqlite3 workload for `scripts/bench --programs`: inserts, an index, joins and aggregates on a
-- temporary database file. Values come from arithmetic, not random(), so the output is the
-- same under every allocator.
PRAGMA journal_mode = MEMORY;
PRAGMA cache_size = -32768;
CREATE TABLE item(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, price REAL, note TEXT);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)
INSERT INTO item SELECT x, printf('item-%08x', (x * 2654435761) % 4294967296), x % 997,
       (x * 37 % 10007) / 100.0, substr(printf('%.40c', 'n') || x, 1, 20 + x % 40) FROM c;
COMMIT;
CREATE INDEX item_grp ON item(grp, price);
CREATE TABLE grp AS SELECT grp, count(*) AS n, avg(price) AS mean FROM item GROUP BY grp;
SELECT count(*), sum(n), round(sum(mean), 3) FROM grp;
SELECT g.grp, count(*), round(max(i.price), 2) FROM item i JOIN grp g ON g.grp = i.grp
 WHERE i.price > g.mean GROUP BY g.grp ORDER BY count(*) DESC, g.grp LIMIT 5;
SELECT name FROM item ORDER BY name DESC LIMIT 3;
SELECT length(group_concat(note, ',')) FROM (SELECT note FROM item ORDER BY note, id);
UPDATE item SET note = upper(note) WHERE id % 3 = 0;
DELETE FROM item WHERE grp < 300;
SELECT count(*), round(sum(price), 2) FROM item;
