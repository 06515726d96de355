#!/usr/bin/env bash
# ku9 document collections against hand-written raw JSONB SQL doing the
# same work on the same data, with pgbench (run by tools/bench.sh, which
# exports PG* for a database with ku9 installed; the connection is a
# superuser's).
#
#   ku9  the collection "bench", made with {"events": false} (the raw side
#        sends no NOTIFY), and ku9.create_index('bench', '{"n": 1}')
#   raw  the plain table raw_docs (_id jsonb primary key, owner uuid,
#        version bigint, created_at, updated_at, doc jsonb) with the indexes
#        one would write by hand: GIN (doc jsonb_path_ops), the B-tree
#        expression index (((doc ->> 'n')::numeric)) for the range field, and
#        one on owner, as ku9's table has
#
# Both hold the same DOCS documents (about 240 bytes each: _id 1..DOCS, a
# number n unique in 0..DOCS-1, one of DOCS / 100 tags, so 100 documents
# per tag, and a few more fields; raw_docs is a copy of the collection's
# rows), loaded with INSERT ... SELECT, then VACUUM ANALYZEd.  Before the
# runs, the two sides' results are compared on a sample of arguments.
#
# Each figure is pgbench -n -M prepared -T DUR with one client and with two
# (-c 2 -j 2), REPS runs per side, the sides taking turns; reads first (each
# after one untimed run per side that brings its pages into shared
# buffers), then writes.  Printed: the best run of each side (the least
# disturbed when other work shares the machine) and ku9 / raw.
#
#   insert_one        ku9.insert_one('bench', doc): ku9 makes an ObjectId-style _id
#                     INSERT INTO raw_docs (_id, doc) ... with an _id from a sequence
#   insert_many 100   ku9.insert_many('bench', [100 documents])
#                     one INSERT ... SELECT of the array's elements, _ids from a sequence
#   find_one by _id   ku9.find_one('bench', {"_id": i}), i random in 1..DOCS
#                     SELECT doc FROM raw_docs WHERE _id = $1
#   range + sort      ku9.find('bench', {"n": {"$gte": x}}, {"sort": {"n": 1}, "limit": 20})
#                     SELECT doc FROM raw_docs WHERE (doc ->> 'n')::numeric >= $1
#                         ORDER BY (doc ->> 'n')::numeric LIMIT 20
#   tag (GIN)         ku9.find('bench', {"tag": "t<random>"}): 100 documents
#                     SELECT doc FROM raw_docs WHERE doc @> {"tag": "t<random>"}
#   update_one $inc   ku9.update_one('bench', {"_id": i}, {"$inc": {"k": 1}})
#                     UPDATE raw_docs SET doc = jsonb_set(doc, '{k}', ...),
#                         version = version + 1, updated_at = now() WHERE _id = $1
#
# The inserted documents are DOC with a random n.  The collection and
# raw_docs are dropped at the end (KEEP=1 keeps them).  About 5 minutes
# with the defaults, the load included.
#
#   DOCS=1000000 DUR=5 REPS=2 CLIENTS="1 2" BENCH=docs make bench
set -euo pipefail

DOCS=${DOCS:-1000000}
DUR=${DUR:-5}
REPS=${REPS:-2}
CLIENTS=${CLIENTS:-1 2}
PGBENCH=${PGBENCH:-$(pg_config --bindir)/pgbench}
# the document insert_one and insert_many write (insert_many: 100 of them)
DOC='{"k": 0, "n": 123456, "tag": "t42", "tags": ["a1", "b2"], "title": "a new document", "author": {"name": "user 42", "email": "user42@example.com"}, "status": "new"}'
BATCH="[$(for i in $(seq 100); do printf '%s%s' "$([ "$i" -gt 1 ] && echo ', ')" "$DOC"; done)]"

work=$(mktemp -d /tmp/ku9-docs-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
started=$SECONDS

sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
log() { printf '%s\n' "$*" >&2; }

# ------------------------------------------------------------------------
# the pgbench scripts: $work/<figure>.<side>.sql
# ------------------------------------------------------------------------
script() { cat >"$work/$1.$2.sql"; }

# the documents inserted: DOC with a random n (a constant n would pile up
# equal keys in both n indexes, which is not the case measured here)
script insert_one ku9 <<'EOF'
\set n random(0, :docs - 1)
SELECT ku9.insert_one('bench', :doc::jsonb || jsonb_build_object('n', :n::int));
EOF
script insert_one raw <<'EOF'
\set n random(0, :docs - 1)
INSERT INTO raw_docs (_id, doc)
    SELECT to_jsonb(id), :doc::jsonb || jsonb_build_object('n', :n::int, '_id', id)
    FROM nextval('raw_docs_ids') id
    RETURNING _id;
EOF

# both sides get the same array, built per call from BATCH (100 times DOC)
# with a random n in each document
script insert_many ku9 <<'EOF'
SELECT ku9.insert_many('bench', (SELECT jsonb_agg(d || jsonb_build_object('n', (random() * :docs)::int))
                                 FROM jsonb_array_elements(:batch) d));
EOF
script insert_many raw <<'EOF'
INSERT INTO raw_docs (_id, doc)
    SELECT to_jsonb(id), e || jsonb_build_object('_id', id)
    FROM (SELECT nextval('raw_docs_ids') AS id, e
          FROM jsonb_array_elements((SELECT jsonb_agg(d || jsonb_build_object('n', (random() * :docs)::int))
                                     FROM jsonb_array_elements(:batch) d)) e) s
    RETURNING _id;
EOF

script find_id ku9 <<'EOF'
\set id random(1, :docs)
SELECT ku9.find_one('bench', jsonb_build_object('_id', :id::int));
EOF
script find_id raw <<'EOF'
\set id random(1, :docs)
SELECT doc FROM raw_docs WHERE _id = :id;
EOF

script range ku9 <<'EOF'
\set x random(0, :docs - 1)
SELECT * FROM ku9.find('bench', jsonb_build_object('n', jsonb_build_object('$gte', :x::int)),
                       '{"sort": {"n": 1}, "limit": 20}');
EOF
script range raw <<'EOF'
\set x random(0, :docs - 1)
SELECT doc FROM raw_docs WHERE (doc ->> 'n')::numeric >= :x ORDER BY (doc ->> 'n')::numeric LIMIT 20;
EOF

script tag ku9 <<'EOF'
\set t random(0, :docs / 100 - 1)
SELECT * FROM ku9.find('bench', jsonb_build_object('tag', 't' || :t::int));
EOF
script tag raw <<'EOF'
\set t random(0, :docs / 100 - 1)
SELECT doc FROM raw_docs WHERE doc @> jsonb_build_object('tag', 't' || :t::int);
EOF

script update ku9 <<'EOF'
\set id random(1, :docs)
SELECT ku9.update_one('bench', jsonb_build_object('_id', :id::int), '{"$inc": {"k": 1}}');
EOF
script update raw <<'EOF'
\set id random(1, :docs)
UPDATE raw_docs
    SET doc = jsonb_set(doc, '{k}', to_jsonb(coalesce((doc ->> 'k')::numeric, 0) + 1)),
        version = version + 1, updated_at = now()
    WHERE _id = :id;
EOF

# ------------------------------------------------------------------------
# the data: DOCS documents in the collection, the same rows in raw_docs
# ------------------------------------------------------------------------
log "loading $DOCS documents into the collection bench and into raw_docs"
t0=$SECONDS
sql <<'SQL'
SET client_min_messages = warning;
\o /dev/null
SELECT ku9.drop_collection('bench');
DROP TABLE IF EXISTS raw_docs;
DROP SEQUENCE IF EXISTS raw_docs_ids;
SELECT ku9.create_collection('bench', '{"events": false}');
SQL
# ku9's GIN index is dropped for the load and built again after it, as
# raw_docs's is (a bulk build rather than a million inserts)
gin_index=$(psql -X -At -v ON_ERROR_STOP=1 -c "SELECT pg_get_indexdef('ku9_docs.\"bench\$gin\"'::regclass)")
sql -v docs="$DOCS" <<'SQL'
DROP INDEX ku9_docs."bench$gin";
INSERT INTO ku9_docs.bench (doc)
    SELECT jsonb_build_object('_id', i, 'n', i::bigint * 7919 % :docs, 'tag', 't' || i % (:docs / 100),
                              'title', 'document number ' || i, 'status', (ARRAY['new', 'open', 'done'])[i % 3 + 1],
                              'k', 0, 'tags', jsonb_build_array('a' || i % 7, 'b' || i % 11),
                              'author', jsonb_build_object('name', 'user ' || i % 5000,
                                                           'email', 'user' || i % 5000 || '@example.com'))
    FROM generate_series(1, :docs) i;
CREATE TABLE raw_docs (
    _id         jsonb,
    owner       uuid,
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    doc         jsonb NOT NULL
);
INSERT INTO raw_docs SELECT _id, owner, version, created_at, updated_at, doc FROM ku9_docs.bench;
-- raw_docs's _ids for new documents
CREATE SEQUENCE raw_docs_ids;
SELECT setval('raw_docs_ids', :docs) \g /dev/null
SQL
# the indexes of the two tables are built side by side (2 cores)
sql -v gin_index="$gin_index" <<'SQL' &
SET maintenance_work_mem = '512MB';
:gin_index;
SELECT ku9.create_index('bench', '{"n": 1}') \g /dev/null
SQL
ku9_index=$!
sql <<'SQL'
SET maintenance_work_mem = '512MB';
ALTER TABLE raw_docs ADD PRIMARY KEY (_id);
CREATE INDEX raw_docs_gin ON raw_docs USING gin (doc jsonb_path_ops);
CREATE INDEX raw_docs_n ON raw_docs (((doc ->> 'n')::numeric));
CREATE INDEX raw_docs_owner ON raw_docs (owner);
SQL
wait "$ku9_index"

# the two sides agree, on a sample of the arguments the runs draw
sql -v docs="$DOCS" -v doc="$DOC" <<'SQL'
\o /dev/null
CREATE FUNCTION pg_temp.agree(bad bigint, what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF bad > 0 THEN
        RAISE EXCEPTION 'ku9 and raw SQL disagree: %', what;
    END IF;
END
$$;
SELECT pg_temp.agree(count(*), 'find_one by _id') FROM generate_series(1, :docs, :docs / 100) i
WHERE ku9.find_one('bench', jsonb_build_object('_id', i))
      IS DISTINCT FROM (SELECT doc FROM raw_docs WHERE _id = to_jsonb(i));
SELECT pg_temp.agree(count(*), 'find n >= X, sort n, limit 20') FROM generate_series(0, :docs - 1, :docs / 100 - 3) x
WHERE (SELECT array_agg(d ORDER BY o) FROM ku9.find('bench', jsonb_build_object('n', jsonb_build_object('$gte', x)),
                                                     '{"sort": {"n": 1}, "limit": 20}') WITH ORDINALITY f(d, o))
      IS DISTINCT FROM (SELECT array_agg(doc) FROM (SELECT doc FROM raw_docs WHERE (doc ->> 'n')::numeric >= x
                                                    ORDER BY (doc ->> 'n')::numeric LIMIT 20) s);
SELECT pg_temp.agree(count(*), 'find {tag}') FROM generate_series(0, :docs / 100 - 1, :docs / 10000 + 7) t
WHERE (SELECT array_agg(d ORDER BY d) FROM ku9.find('bench', jsonb_build_object('tag', 't' || t)) d)
      IS DISTINCT FROM (SELECT array_agg(doc ORDER BY doc) FROM raw_docs WHERE doc @> jsonb_build_object('tag', 't' || t))
   OR (SELECT count(*) FROM ku9.find('bench', jsonb_build_object('tag', 't' || t))) <> 100;
SELECT ku9.update_one('bench', '{"_id": 1}', '{"$inc": {"k": 1}}');
UPDATE raw_docs
    SET doc = jsonb_set(doc, '{k}', to_jsonb(coalesce((doc ->> 'k')::numeric, 0) + 1)),
        version = version + 1, updated_at = now()
    WHERE _id = '1';
SELECT pg_temp.agree(count(*), 'update_one $inc') FROM ku9_docs.bench b JOIN raw_docs r USING (_id)
WHERE _id = '1' AND ((b.doc, b.version) IS DISTINCT FROM (r.doc, r.version) OR r.doc -> 'k' <> '1');
SELECT ku9.insert_one('bench', :'doc') -> 'inserted_id' AS id1,
       ku9.insert_many('bench', jsonb_build_array(:'doc'::jsonb, :'doc'::jsonb)) -> 'inserted_ids' -> 1 AS id2 \gset
INSERT INTO raw_docs (_id, doc)
    SELECT to_jsonb(id), :'doc'::jsonb || jsonb_build_object('_id', id) FROM nextval('raw_docs_ids') id
    RETURNING _id AS id3 \gset
WITH i AS (
    INSERT INTO raw_docs (_id, doc)
        SELECT to_jsonb(id), e || jsonb_build_object('_id', id)
        FROM (SELECT nextval('raw_docs_ids') AS id, e FROM jsonb_array_elements(jsonb_build_array(:'doc'::jsonb, :'doc'::jsonb)) e) s
        RETURNING _id)
SELECT _id AS id4 FROM i ORDER BY _id DESC LIMIT 1 \gset
SELECT pg_temp.agree(count(*), 'inserts')
FROM (SELECT (SELECT doc - '_id' FROM ku9_docs.bench WHERE _id = :'id1') AS a,
             (SELECT doc - '_id' FROM ku9_docs.bench WHERE _id = :'id2') AS b,
             (SELECT doc - '_id' FROM raw_docs WHERE _id = :'id3') AS c,
             (SELECT doc - '_id' FROM raw_docs WHERE _id = :'id4') AS d) s
WHERE a IS NULL OR a <> :'doc'::jsonb OR b <> a OR c <> a OR d <> a;
SQL

sql <<'SQL'
-- steadier runs: no autovacuum in the middle of one (the same for both)
ALTER TABLE ku9_docs.bench SET (autovacuum_enabled = false);
ALTER TABLE raw_docs SET (autovacuum_enabled = false);
VACUUM ANALYZE ku9_docs.bench;
VACUUM ANALYZE raw_docs;
CHECKPOINT;
SQL
load_s=$((SECONDS - t0))
log "  loaded in $load_s s"

# ------------------------------------------------------------------------
# measuring
# ------------------------------------------------------------------------
results=$work/results
: >"$results"

# run FIGURE SIDE CLIENTS [warm]: one pgbench run of DUR seconds; records
# "figure clients side tps" in $results.  With warm: an untimed run of
# DUR / 2 seconds that brings the figure's pages into shared buffers.
run() {
    local figure=$1 side=$2 clients=$3 warm=${4:-} out=$work/pgbench.out tps dur=$DUR
    [ -n "$warm" ] && dur=$(((DUR + 1) / 2))
    if ! "$PGBENCH" -n -M prepared -f "$work/$figure.$side.sql" -c "$clients" -j "$clients" -T "$dur" \
        -D docs="$DOCS" -D doc="$DOC" -D batch="$BATCH" >"$out" 2>&1 ||
        grep -q 'aborted' "$out"; then
        cat "$out" >&2
        log "pgbench failed: $figure / $side / $clients"
        exit 1
    fi
    [ -n "$warm" ] && return
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out")
    echo "$figure $clients $side $tps" >>"$results"
    log "$(printf '  %-12s %s client(s)  %-4s %10.1f tps' "$figure" "$clients" "$side" "$tps")"
}

log "pgbench: $REPS runs of $DUR s per figure, side and client count, the sides taking turns"
for figure in find_id range tag update insert_one insert_many; do
    case $figure in
    find_id | range | tag)
        run "$figure" ku9 2 warm
        run "$figure" raw 2 warm
        ;;
    esac
    for c in $CLIENTS; do
        for _ in $(seq "$REPS"); do
            run "$figure" ku9 "$c"
            run "$figure" raw "$c"
        done
    done
done
log "done in $((SECONDS - started)) s"

if [ -z "${KEEP:-}" ]; then
    sql -c "SET client_min_messages = warning" -c "SELECT ku9.drop_collection('bench')" \
        -c 'DROP TABLE raw_docs' -c 'DROP SEQUENCE raw_docs_ids' >/dev/null
fi

# ------------------------------------------------------------------------
# the table: the best of the runs of each side (the least disturbed when
# other work shares the machine), and the ratio of the two
# ------------------------------------------------------------------------
echo "$DOCS documents in each table, loaded and indexed in $load_s s; pgbench -n -M prepared," \
     "the best of $REPS runs of $DUR s each, the two sides taking turns"
echo
echo '| figure | clients | ku9 tps | raw SQL tps | ku9 / raw |'
echo '|---|---:|---:|---:|---:|'
awk '
    { k = $1 " " $2 " " $3; if (!(k in best) || $4 > best[k]) best[k] = $4 }
    END {
        n = split("insert_one insert_many find_id range tag update", order, " ")
        label["insert_one"] = "insert_one"
        label["insert_many"] = "insert_many, 100 documents"
        label["find_id"] = "find_one by _id"
        label["range"] = "find n >= X, sort n, limit 20"
        label["tag"] = "find {tag: t} (GIN, 100 documents)"
        label["update"] = "update_one $inc by _id"
        for (i = 1; i <= n; i++)
            for (c = 1; c <= 64; c++) {
                k = order[i] " " c
                if (!((k " ku9") in best)) continue
                a = best[k " ku9"]; b = best[k " raw"]
                printf "| %s | %d | %.0f | %.0f | %.2f |\n", label[order[i]], c, a, b, (b > 0 ? a / b : 0)
            }
    }' "$results"
